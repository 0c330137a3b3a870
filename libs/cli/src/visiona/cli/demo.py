"""``make demo``: the whole journey against the local stack (`make up`), with the CLI.

Signs in a fresh dev user, buys credits, uploads ten sample photos, trains a model, generates
two images, downloads them, and prints where they are.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from visiona.cli.config import DEFAULT_GATEWAY
from visiona.cli.samples import write_photos


def run(*args: str, env: dict[str, str]) -> str:
    print(f"\n$ visiona {' '.join(args)}", flush=True)
    cli = shutil.which("visiona", path=str(Path(sys.executable).parent)) or "visiona"
    done = subprocess.run([cli, *args], env=env, capture_output=True, text=True)
    sys.stdout.write(done.stdout)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"visiona {args[0]} failed ({done.returncode})")
    return done.stdout


def main() -> None:
    gateway = os.environ.get("VISIONA_GATEWAY", DEFAULT_GATEWAY)
    try:
        ready = httpx.get(f"{gateway}/readyz", timeout=5)
    except httpx.HTTPError:
        raise SystemExit(
            f"No gateway at {gateway}: start the platform with `make up` first."
        ) from None
    if ready.status_code != 200:
        raise SystemExit(f"The platform is not ready yet ({gateway}/readyz): {ready.text}")
    root = Path(os.environ.get("VISIONA_DEMO_DIR", ".dev/demo")).resolve()
    user = f"demo-{uuid.uuid4().hex[:6]}"
    env = os.environ | {"VISIONA_CONFIG": str(root / "config.json"), "VISIONA_GATEWAY": gateway}
    photos = write_photos(root / "photos")
    print(f"{len(photos)} sample photos in {photos[0].parent}")

    run("login", "--dev", user, env=env)
    run("buy", "starter", "--dev-pay", env=env)
    deadline = time.monotonic() + 30
    while json.loads(run("balance", "--json", env=env))["available"] == 0:
        if time.monotonic() > deadline:
            raise SystemExit("the purchase was not credited within 30 s")
        time.sleep(1)
    run("photos", "upload", str(photos[0].parent), env=env)
    run("train", "Demo", "--preset", "fast", env=env)
    run("models", env=env)
    model_id = json.loads(run("models", "--json", env=env))[0]["id"]
    out = root / "images"
    run(
        "generate",
        model_id,
        "me as an astronaut on Mars, golden hour",
        "--n",
        "2",
        "--enhance",
        "--out",
        str(out),
        env=env,
    )
    run("balance", env=env)
    images = sorted(out.glob("*"))
    print(f"\nDone: {len(images)} image(s) of {user} in {out}")
    for image in images:
        print(f"  {image}")


if __name__ == "__main__":
    main()
