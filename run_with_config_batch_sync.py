#!/usr/bin/env python3
"""Container entrypoint: run one job from a config URL (see README.md)."""

if __name__ == "__main__":
    import sys

    from batch.head_start import head_start

    head_start(sys.argv[1:])  # before the imports below: PID 1's runner, the runner's first ffprobe
    from batch.cli import main
    from batch.process_exit import run_main

    run_main(main)
