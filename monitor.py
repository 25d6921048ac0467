#!/usr/bin/env python3
"""Watchdog entrypoint: verify the upload, then stop the instance (see README.md)."""

import sys

from batch.watchdog.cli import main

if __name__ == "__main__":
    sys.exit(main())
