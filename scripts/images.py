"""Build every container image from the committed Dockerfiles and check each one (``make images``).

No Docker engine and no image registry are reachable here, so the bases are made from Debian's
packages and the images are built and checked with Debian's podman (as root, as CI runs):

1. Bases (images_base.py): ``debootstrap --variant=minbase bookworm`` with only what the
   runtime needs, ``podman import``-ed as ``localhost/visiona/python-base:3.11-bookworm`` and
   ``localhost/visiona/node-base:<the Node of requirements.lock>``; passed to the Dockerfiles
   BY DIGEST (PYTHON_IMAGE, NODE_IMAGE), as they say CI pins them.
2. Builds, ``podman build --isolation chroot``: the five services from services/Dockerfile
   (SERVICE, PORT; they share the third-party layer), the backup job's ``ops`` image (its
   ``ops`` target), the web app from web/Dockerfile.
3. Checks (images_check.py): the config's user is 10001; no compiler, build tool, package
   installer, test runner, linter, emulator, tests folder or .git is in the filesystem; then the
   image's own ENTRYPOINT/CMD is started in its root filesystem (``podman image mount``,
   chroot, uid 10001, the host network) against a throwaway database (provisioned, then migrated
   by the image's own ``migrate``) and a throwaway RabbitMQ exchange and queue prefix, and must
   answer its health check: gRPC health SERVING, the gateway's /healthz and /readyz, the web
   app's ``/`` and ``/metrics``; the ops image's ``backup`` (as a backup role, into a throwaway bucket) must
   succeed and its ``list`` name that backup.

One line per image (name, size, user, health answer), then a summary; exit status 1 on any
failure. Everything made for the checks is removed afterwards, the images and bases stay.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from images_base import BaseImages, make_bases, podman
from images_check import CheckResult, check_images

ROOT = Path(__file__).resolve().parent.parent
# Each service and its listening port (compose and deploy/k8s use the same).
SERVICE_PORTS = {
    "gateway": 8000,
    "prompts": 50051,
    "training": 50052,
    "generation": 50053,
    "billing": 50054,
}
REPOSITORY = "localhost/visiona"
TAG = "ci"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# podman's options per storage driver. overlay is the machine's default store (podman 4.3
# refuses an explicit --storage-driver that its database did not record); vfs needs a store
# of its own.
STORAGE = {
    "overlay": [],
    "vfs": [
        "--storage-driver=vfs",
        "--root=/var/lib/containers/storage-vfs",
        "--runroot=/run/containers/storage-vfs",
    ],
}


def build_python(
    image: str,
    target: str,
    args: dict[str, str],
    bases: BaseImages,
    storage: list[str],
    trust: list[str],
) -> str:
    """One target of services/Dockerfile on the python base, with ``args`` as build arguments."""
    build_args = [f"--build-arg={name}={value}" for name, value in args.items()]
    podman(
        *storage,
        "build",
        *trust,
        "--isolation",
        "chroot",
        "--layers",
        "--target",
        target,
        "-f",
        "services/Dockerfile",
        f"--build-arg=PYTHON_IMAGE={bases.python}",
        *build_args,
        "-t",
        image,
        ".",
        cwd=ROOT,
        quiet=False,
    )
    return image


def build_service(service: str, bases: BaseImages, storage: list[str], trust: list[str]) -> str:
    args = {"SERVICE": service, "PORT": str(SERVICE_PORTS[service])}
    return build_python(f"{REPOSITORY}/{service}:{TAG}", "runtime", args, bases, storage, trust)


def build_ops(bases: BaseImages, storage: list[str], trust: list[str]) -> str:
    """The backup CronJob's image (deploy/k8s/base/backup.yaml): visiona-ops and pg_dump."""
    return build_python(f"{REPOSITORY}/ops:{TAG}", "ops", {}, bases, storage, trust)


def build_web(bases: BaseImages, storage: list[str], trust: list[str]) -> str:
    image = f"{REPOSITORY}/web:{TAG}"
    podman(
        *storage,
        "build",
        *trust,
        "--isolation",
        "chroot",
        "--layers",
        "--target",
        "runtime",
        "--build-arg",
        f"NODE_IMAGE={bases.node}",
        "-t",
        image,
        "web",
        cwd=ROOT,
        quiet=False,
    )
    return image


def machine_trust(scratch: Path) -> list[str]:
    """Build-time volumes that make pip and npm trust what this machine trusts.

    Some networks (this one) reach the registries through a TLS-inspecting proxy whose CA is
    only in the machine's bundle, not in the image's ca-certificates or pip's certifi. The
    machine's bundle and a pip and npm config naming it are mounted for the RUN steps only
    (build volumes are never committed), so the Dockerfiles stay free of any site's setup.
    """
    if not CA_BUNDLE.is_file():
        return []
    pip_conf = scratch / "pip.conf"
    pip_conf.write_text(f"[global]\ncert = {CA_BUNDLE}\n")
    npmrc = scratch / "npmrc"
    npmrc.write_text(f"cafile={CA_BUNDLE}\n")
    return [
        f"--volume={CA_BUNDLE}:{CA_BUNDLE}:ro",
        f"--volume={pip_conf}:/etc/pip.conf:ro",
        f"--volume={npmrc}:/usr/local/etc/npmrc:ro",
    ]


def print_summary(results: list[CheckResult], timings: dict[str, float]) -> None:
    print()
    print(f"{'image':<34} {'size':>8}  {'user':<12} {'health':<44} result")
    for r in results:
        status = "ok" if r.ok else "FAIL"
        print(f"{r.image:<34} {r.size_mb:>6.0f}MB  {r.user:<12} {r.health:<44} {status}")
        for problem in r.problems:
            print(f"    - {problem}")
    print("timings: " + ", ".join(f"{name} {seconds:.0f}s" for name, seconds in timings.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--storage-driver",
        default="overlay",
        choices=("overlay", "vfs"),
        help="podman's storage driver (overlay measured faster here; vfs works anywhere)",
    )
    parser.add_argument("--only", nargs="*", help="build and check only these images")
    parser.add_argument("--no-check", action="store_true", help="build only")
    args = parser.parse_args(argv)
    storage = STORAGE[args.storage_driver]
    wanted = set(args.only or [*SERVICE_PORTS, "ops", "web"])
    timings: dict[str, float] = {}

    started = time.monotonic()
    bases = make_bases(storage)
    timings["bases"] = time.monotonic() - started
    print(f"bases: {bases.python}\n       {bases.node}", flush=True)

    images: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="visiona-images-") as scratch:
        trust = machine_trust(Path(scratch))
        started = time.monotonic()
        for service in SERVICE_PORTS:
            if service in wanted:
                images[service] = build_service(service, bases, storage, trust)
        timings["services build"] = time.monotonic() - started
        if "ops" in wanted:
            started = time.monotonic()
            images["ops"] = build_ops(bases, storage, trust)
            timings["ops build"] = time.monotonic() - started
        if "web" in wanted:
            started = time.monotonic()
            images["web"] = build_web(bases, storage, trust)
            timings["web build"] = time.monotonic() - started
    if args.no_check:
        return 0

    started = time.monotonic()
    results = check_images(images, SERVICE_PORTS, storage)
    timings["checks"] = time.monotonic() - started
    print_summary(results, timings)
    failed = [r.image for r in results if not r.ok]
    if failed:
        print(f"images: {len(failed)} of {len(results)} failed: {', '.join(failed)}")
        return 1
    print(f"images: all {len(results)} built and healthy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
