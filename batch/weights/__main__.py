"""``python -m batch.models``: list the registry, fill the weights cache.

    python -m batch.models list
    python -m batch.models fetch rife-4.25 realesr-animevideov3
    python -m batch.models fetch --url s3://bucket/w/flownet.pkl --sha256 <hex> --kind rife

The Dockerfile runs ``fetch`` with its WEIGHTS build argument to bake weights
into the image. Exit status: 0 all fetched and checked, 2 a name or checksum
is wrong, 3 a file could not be fetched.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from batch.errors import BatchError, WeightsNotFound
from batch.weights.cache import cache_path, ensure, weights_dir
from batch.weights.registry import REGISTRY, WeightsRef, from_url, lookup


def _parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="registry names, kinds, and whether each is cached")
    f = sub.add_parser("fetch", help="download and check weights into WEIGHTS_DIR")
    f.add_argument("names", nargs="*", metavar="NAME", help="registry names (see `list`)")
    f.add_argument("--url", help="any storage URL instead of a name")
    f.add_argument("--sha256", help="the checksum the --url file must have")
    f.add_argument("--kind", choices=("rife", "sr", "sam2"), default="sr", help="what the --url file is")
    return p


def _refs(args: argparse.Namespace) -> list[WeightsRef]:
    refs = [lookup(n) for n in args.names]
    if args.url:
        if not args.sha256:
            raise ValueError("--url needs --sha256 (sha256sum FILE prints it)")
        refs.append(from_url(args.url, args.sha256, args.kind))
    if not refs:
        raise ValueError("name at least one model, or give --url and --sha256")
    return refs


def main(argv: Sequence[str] | None = None, prog: str = "python -m batch.weights") -> int:
    args = _parser(prog).parse_args(argv)
    if args.command == "list":
        for name, ref in REGISTRY.items():
            cached = "cached" if cache_path(ref).is_file() else "-"
            print(f"{name:28} {ref.kind:5} {cached:7} {ref.url}")
        return 0
    try:
        refs = _refs(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    status = 0
    for ref in refs:
        try:
            path = ensure(ref)
        except BatchError as e:
            print(f"error: {e}", file=sys.stderr)
            status = max(status, 3 if isinstance(e, WeightsNotFound) else 2)
            continue
        checked = "sha256 checked" if ref.sha256 else "no published sha256: unverified"
        print(f"{ref.name}: {path} ({checked})")
    print(f"weights dir: {weights_dir()}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
