"""``python -m bench [NAME ...] [--rounds N]``: run benchmarks, print one line each, write JSON.

With no name every registered benchmark runs. A missed goal is reported, not an error: the
exit status is non-zero only when a benchmark could not measure.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import time
import traceback

from bench.common import DEFAULT_ROUNDS, BenchError, check_dependencies

# name → module exposing ``run(rounds) -> Result``; imported only when its benchmark runs.
REGISTRY: dict[str, str] = {
    "gateway_tax": "bench.gateway_tax",
    "event_pipeline": "bench.event_pipeline",
    "credit_hold": "bench.credit_hold",
    "webhook_ingest_overhead": "bench.webhook_ingest_overhead",
    "upload_overhead": "bench.upload_overhead",
    "dataset_assembly": "bench.dataset_assembly",
    "orchestration_share": "bench.orchestration_share",
    "generation_throughput": "bench.generation_throughput",
    "web_vitals": "bench.web_vitals",
    "web_generation_share": "bench.web_generation_share",
    "scale_out": "bench.scale_out",
}


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # As an exception, so every benchmark's clean-up (processes, databases, queues) still runs.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(REGISTRY))
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in REGISTRY]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(REGISTRY)}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    try:
        check_dependencies()
    except BenchError as exc:
        print(exc, file=sys.stderr)
        return 2

    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    failed: list[str] = []
    for name in args.names or list(REGISTRY):
        started = time.monotonic()
        try:
            result = importlib.import_module(REGISTRY[name]).run(args.rounds)
        except Exception:
            traceback.print_exc()
            print(f"{name}: error (see above)", flush=True)
            failed.append(name)
            continue
        path = result.write()
        print(result.line(), flush=True)
        print(f"  ({time.monotonic() - started:.0f} s, {path})", file=sys.stderr, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
