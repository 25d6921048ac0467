#!/usr/bin/env python3
"""Watchdog entrypoint: verify the upload, then stop the instance (see README.md)."""

from batch.process_exit import run_main

if __name__ == "__main__":
    from batch.watchdog.cli import main

    run_main(main)
