#!/usr/bin/env python3
"""Container entrypoint: run one job from a config URL (see README.md)."""

import sys

from batch.cli import main

if __name__ == "__main__":
    sys.exit(main())
