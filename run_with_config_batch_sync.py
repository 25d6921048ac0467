#!/usr/bin/env python3
"""Container entrypoint: run one job from a config URL (see README.md)."""

from batch.process_exit import run_main

if __name__ == "__main__":
    from batch.cli import main

    run_main(main)
