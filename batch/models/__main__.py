"""``python -m batch.models`` is kept as an alias of ``python -m batch.weights``."""

from batch.weights.__main__ import main

if __name__ == "__main__":
    raise SystemExit(main(prog="python -m batch.models"))
