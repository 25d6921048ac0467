#!/usr/bin/env python3
"""Create a RunPod GPU pod that runs the job image (from a laptop).

    RUNPOD_API_KEY=... CONFIG_URL=s3://bucket/jobs/job.yaml \\
    python scripts/launch_runpod.py --image ghcr.io/you/gpu-batch-runner:1.0 \\
        --gpu "RTX 4090" --min-vram 24 --max-price 0.80 --cloud SECURE --disk 60 [--min-cuda 12.4] [--dry-run]

Lists GPU types (runpod.get_gpus()), prices each one matching --gpu (part
of the id or display name) / --gpu-type-id and --min-vram for --gpu-count
GPUs in --cloud (runpod.get_gpu()), takes the cheapest under --max-price,
prints it and its price, then calls runpod.create_pod() with the image, the
container disk (--disk), the volume (--volume, default 0), start_ssh=False,
no ports and an empty docker_args (the image's entrypoint runs), and the
environment: CONFIG_URL plus whichever of AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_ENDPOINT_URL, AWS_REGION,
B2_APPLICATION_KEY_ID, B2_APPLICATION_KEY are set here (and any --env
NAME). Values other than CONFIG_URL are printed as ***. The pod stops or
terminates itself with the pod-scoped RUNPOD_API_KEY RunPod gives it
(docs/watchdog.md).

Interruptible (spot) pods: not supported. runpod SDK 1.12.0's create_pod
deploys on demand only (podFindAndDeployOnDemand) and has no spot/bid call.

--dry-run prints the calls and create_pod's arguments (secrets masked) and
sends nothing, so it needs no key. API key: RUNPOD_API_KEY; endpoint:
RUNPOD_API_BASE_URL (default https://api.runpod.io), read by the SDK.

Exit codes: 0 created (or dry run), 2 bad usage / missing RUNPOD_API_KEY or
CONFIG_URL / a value the SDK cannot send, 3 no GPU type matches, 4 key
refused (401), 5 RunPod unreachable or failing (e.g. no free machine).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from batch.providers.launch import Console, follow_hint, instance_env, masked_env, secret_values
from batch.providers.runpod.launch import GpuFilters, RunPodLauncher


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image", required=True, help="the job image, e.g. ghcr.io/you/gpu-batch-runner:1.0")
    p.add_argument("--config-url", help="job config URL for the pod (default: $CONFIG_URL)")
    p.add_argument("--gpu", help='part of a GPU type id or name: "RTX 4090", A100, H100 ...')
    p.add_argument("--gpu-type-id", help='an exact GPU type id, e.g. "NVIDIA GeForce RTX 4090"')
    p.add_argument("--gpu-count", type=int, default=1, help="GPUs in the pod (default 1)")
    p.add_argument("--min-vram", type=float, metavar="GB", help="VRAM per GPU, at least")
    p.add_argument("--max-price", type=float, metavar="USD_PER_H", help="$/h for all the GPUs, at most")
    p.add_argument("--cloud", choices=("ALL", "SECURE", "COMMUNITY"), default="ALL", help="default ALL")
    p.add_argument("--disk", type=int, default=50, metavar="GB", help="container disk (default 50)")
    p.add_argument("--volume", type=int, default=0, metavar="GB", help="pod volume (default 0: none)")
    p.add_argument(
        "--min-cuda", metavar="VERSION", help="host CUDA at least, e.g. 12.4 (allowedCudaVersions)"
    )
    p.add_argument("--env", action="append", default=[], metavar="NAME", help="also forward $NAME (repeat)")
    p.add_argument("--name", default="gpu-batch-runner", help="pod name (default gpu-batch-runner)")
    p.add_argument("--output-prefix", help="the config's output: prefix, for the follow-up hint")
    p.add_argument("--dry-run", action="store_true", help="print the calls; send nothing")
    return p.parse_args(argv)


def show_call(kwargs: dict[str, Any]) -> str:
    shown = dict(kwargs, env=masked_env(kwargs["env"]))
    return "runpod.create_pod(\n" + "".join(f"    {k}={v!r},\n" for k, v in shown.items()) + ")"


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    launcher = RunPodLauncher.from_env()
    console = Console(launcher.api_key)
    say = console.say

    def body() -> int:
        env = instance_env(args.config_url, args.env)
        console.secrets = secret_values(env, launcher.api_key)
        filters = GpuFilters(
            gpu=args.gpu, gpu_type_id=args.gpu_type_id, gpu_count=args.gpu_count, min_vram_gb=args.min_vram,
            max_price=args.max_price, cloud_type=args.cloud,
        )  # fmt: skip
        pod: dict[str, Any] = {
            "name": args.name, "image": args.image, "gpu_count": args.gpu_count, "cloud_type": args.cloud,
            "disk_gb": args.disk, "volume_gb": args.volume, "env": env, "min_cuda": args.min_cuda,
        }  # fmt: skip
        say("env: " + ", ".join(f"{k}={v}" for k, v in masked_env(env).items()))
        if args.dry_run:
            kwargs = launcher.create_kwargs(gpu_type_id="<cheapest matching type>", **pod)
            say(f"dry run: would call runpod.get_gpus() and runpod.get_gpu(id, {args.gpu_count}) per type")
            say(f"  matching ({filters.describe()}), at POST {launcher.url} with Authorization: Bearer ***")
            say("dry run: then " + show_call(kwargs))
            say("dry run: nothing sent")
            return 0
        launcher.create_kwargs(gpu_type_id="-", **pod)  # refuse what cannot be sent before any call
        choice, priced = launcher.choose_gpu(filters)
        say(f"search: {priced} GPU types priced for {filters.describe()}")
        say(f"chosen (cheapest matching): {choice.line()}")
        say(f"price: ${choice.price:.3f}/h on demand for {choice.gpu_count} GPU(s), {args.cloud} cloud")
        pod_info = launcher.create(launcher.create_kwargs(gpu_type_id=choice.id, **pod))
        say(f"created: RunPod pod {pod_info['id']} (machine {pod_info['machineId']}, name {args.name})")
        say(f"follow it: {follow_hint(args.output_prefix)}")
        say(f"the watchdog stops or terminates it; by hand: runpodctl pod delete {pod_info['id']}")
        return 0

    return console.run(body)


if __name__ == "__main__":
    sys.exit(main())
