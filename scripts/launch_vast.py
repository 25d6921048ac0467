#!/usr/bin/env python3
"""Rent a vast.ai GPU and start the job image on it (from a laptop).

    VAST_API_KEY=... CONFIG_URL=s3://bucket/jobs/job.yaml \\
    python scripts/launch_vast.py --image ghcr.io/you/gpu-batch-runner:1.0 \\
        --gpu RTX_4090 --min-vram 24 --max-price 0.60 --disk 60 --min-reliability 0.98 --min-cuda 12.4 \\
        [--bid 0.25] [--order price|score] [--offer-id ID] [--dry-run]

Searches offers (POST /api/v0/bundles/), prints the chosen one and its price,
then creates the instance (PUT /api/v0/asks/{offer}/) with the image, the
disk, runtype "args" (the image's entrypoint runs; no SSH, no onstart) and the
environment: CONFIG_URL plus whichever of AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_ENDPOINT_URL, AWS_REGION,
B2_APPLICATION_KEY_ID, B2_APPLICATION_KEY are set here (and any --env
NAME). Values other than CONFIG_URL are printed as ***. The instance stops or
destroys itself through the CONTAINER_API_KEY vast.ai gives it
(docs/watchdog.md).

Choice: --order price (default) takes the cheapest offer meeting every filter
(dph_total, which includes the --disk storage); --order score takes the first
in vast.ai's own score order. --bid PRICE rents an interruptible instance at
that $/h (offers whose min_bid is higher are skipped).

--dry-run prints the requests (method, URL, body, secrets masked) and sends
nothing, so it needs no key. API key: VAST_API_KEY; base URL: VAST_URL
(default https://console.vast.ai).

Exit codes: 0 created (or dry run), 2 bad usage / missing VAST_API_KEY or
CONFIG_URL, 3 no offer matches, 4 key refused (401/403), 5 vast.ai
unreachable or failing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from batch.errors import MissingSetting
from batch.providers.launch import Console, follow_hint, instance_env, masked_env, secret_values
from batch.providers.vast.launch import OfferFilters, VastLauncher, choose


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image", required=True, help="the job image, e.g. ghcr.io/you/gpu-batch-runner:1.0")
    p.add_argument("--config-url", help="job config URL for the instance (default: $CONFIG_URL)")
    p.add_argument("--gpu", help='GPU model as vast.ai names it: RTX_4090, "RTX 4090", H100_SXM, ...')
    p.add_argument("--num-gpus", type=int, default=1, help="GPUs in the offer (exactly; default 1)")
    p.add_argument("--min-vram", type=float, metavar="GB", help="VRAM per GPU, at least")
    p.add_argument("--max-price", type=float, metavar="USD_PER_H", help="total $/h (GPUs + disk), at most")
    p.add_argument("--disk", type=float, default=50.0, metavar="GB", help="disk to allocate (default 50)")
    p.add_argument("--min-reliability", type=float, default=0.95, help="0..1 (default 0.95)")
    p.add_argument(
        "--min-cuda", type=float, metavar="VERSION", help="highest CUDA the driver supports, e.g. 12.4"
    )
    p.add_argument(
        "--bid", type=float, metavar="USD_PER_H", help="interruptible at this bid (default on-demand)"
    )
    p.add_argument(
        "--order", choices=("price", "score"), default="price", help="cheapest, or vast.ai's score"
    )
    p.add_argument("--offer-id", type=int, help="rent this offer; skip the search")
    p.add_argument("--env", action="append", default=[], metavar="NAME", help="also forward $NAME (repeat)")
    p.add_argument("--label", default="gpu-batch-runner", help="instance label (default gpu-batch-runner)")
    p.add_argument("--output-prefix", help="the config's output: prefix, for the follow-up hint")
    p.add_argument("--dry-run", action="store_true", help="print the requests; send nothing")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    launcher = VastLauncher.from_env()
    console = Console(launcher.api_key)
    say = console.say

    def body() -> int:
        env = instance_env(args.config_url, args.env)
        console.secrets = secret_values(env, launcher.api_key)
        filters = OfferFilters(
            gpu=args.gpu, num_gpus=args.num_gpus, min_vram_gb=args.min_vram, max_price=args.max_price,
            disk_gb=args.disk, min_reliability=args.min_reliability, min_cuda=args.min_cuda, bid=args.bid,
        )  # fmt: skip
        create = {"image": args.image, "disk_gb": args.disk, "env": env, "label": args.label, "bid": args.bid}
        say("env: " + ", ".join(f"{k}={v}" for k, v in masked_env(env).items()))
        if args.dry_run:
            if args.offer_id is None:
                say(f"dry run: would search ({filters.describe()}), pick by {args.order}:")
                say(launcher.search_request(filters, args.order).show())
            say("dry run: would create the instance:")
            say(launcher.create_request(args.offer_id or "{offer_id}", **create).show())
            say("dry run: nothing sent")
            return 0
        if not launcher.api_key:
            raise MissingSetting(
                "no vast.ai API key: set VAST_API_KEY", hint="console.vast.ai > Account > API keys"
            )
        offer_id = args.offer_id
        if offer_id is None:
            offers = launcher.search(filters, args.order)
            chosen = choose(offers, filters, args.order)
            how = "cheapest matching" if args.order == "price" else "first in vast.ai score order"
            say(f"search: {len(offers)} offers returned for {filters.describe()}")
            say(f"chosen ({how}): {chosen.line()}")
            price = f"price: ${chosen.price:.3f}/h on-demand, including {args.disk:g} GB disk"
            if args.bid is not None:
                floor = chosen.min_bid or 0.0
                price = f"price: bid ${args.bid:.3f}/h (interruptible; the offer's min bid ${floor:.3f}/h)"
            say(price)
            offer_id = chosen.id
        new_id = launcher.create(launcher.create_request(offer_id, **create))
        say(f"created: vast.ai instance {new_id} from offer {offer_id} (label {args.label})")
        say(f"follow it: {follow_hint(args.output_prefix)}")
        say(f"the watchdog stops or destroys it; by hand: vastai destroy instance {new_id}")
        return 0

    return console.run(body)


if __name__ == "__main__":
    sys.exit(main())
