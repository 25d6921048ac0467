#!/usr/bin/env python3
"""Container entrypoint: run one job from a config URL (see README.md)."""

import os

from batch.process_exit import run_main

# pydantic reads every installed package's entry points for plugins when it builds the first model
# (~20 ms of each start, before ffmpeg can start); this product uses none. A value set outside wins.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

if __name__ == "__main__":
    from batch.cli import main

    run_main(main)
