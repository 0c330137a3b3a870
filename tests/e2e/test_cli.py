"""The `visiona` CLI end to end against the running stack: sign in with the dev issuer, buy
credits, upload a folder of photos, train, generate and download, all through the gateway."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from PIL import Image

from tests.e2e.test_billing import wait_balance
from tests.support.stack import RunningStack
from visiona.cli.samples import write_photos


def cli(stack: RunningStack, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "VISIONA_CONFIG": str(config),
        "VISIONA_GATEWAY": stack.url,
        "COLUMNS": "200",
    }
    exe = str(Path(sys.executable).parent / "visiona")
    return subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=300)


def test_the_cli_journey_from_photos_to_downloaded_images(
    stack: RunningStack, tmp_path: Path
) -> None:
    user = f"cli{uuid.uuid4().hex[:6]}"
    config = tmp_path / "config.json"
    login = cli(stack, config, "login", "--dev", user, "--issuer", stack.cfg.clerk_issuer)
    assert login.returncode == 0, login.stderr
    assert oct(config.stat().st_mode & 0o777) == "0o600"

    bought = cli(stack, config, "buy", "starter", "--dev-pay")
    assert bought.returncode == 0, bought.stdout + bought.stderr
    wait_balance(stack, user, 200)

    photos = write_photos(tmp_path / "photos")
    (tmp_path / "photos" / "notes.txt").write_text("not a photo")
    uploaded = cli(stack, config, "photos", "upload", str(photos[0].parent))
    assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
    assert "10 of 10 accepted" in uploaded.stdout

    trained = cli(stack, config, "train", "Me", "--preset", "fast")
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "Ready:" in trained.stdout
    models = json.loads(cli(stack, config, "models", "--json").stdout)
    assert [m["status"] for m in models] == ["succeeded"]

    out = tmp_path / "images"
    generated = cli(
        stack, config, "generate", models[0]["id"], "me on a beach", "--n", "2", "--out", str(out)
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    images = sorted(out.iterdir())
    assert len(images) == 2
    assert all(Image.open(p).format == "WEBP" for p in images)
    assert "42 credits available" in cli(stack, config, "balance").stdout  # 200 - 150 - 2 x 4


def test_the_cli_explains_errors_with_their_codes(stack: RunningStack, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    assert cli(stack, config, "balance").returncode == 2  # not signed in
    cli(
        stack,
        config,
        "login",
        "--dev",
        f"cli{uuid.uuid4().hex[:6]}",
        "--issuer",
        stack.cfg.clerk_issuer,
    )
    missing = cli(stack, config, "generate", str(uuid.uuid4()), "me")
    assert missing.returncode == 1
    assert "model_not_found" in missing.stdout and "HTTP 404" in missing.stdout


def test_the_cli_says_the_limit_of_a_photo_too_large_to_upload(
    stack: RunningStack, tmp_path: Path
) -> None:
    config = tmp_path / "config.json"
    user = f"cli{uuid.uuid4().hex[:6]}"
    cli(stack, config, "login", "--dev", user, "--issuer", stack.cfg.clerk_issuer)
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "huge.jpg").write_bytes(b"\xff\xd8" + b"\0" * (21 * 1024 * 1024))

    uploaded = cli(stack, config, "photos", "upload", str(folder))

    assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
    out = " ".join(uploaded.stdout.split())
    assert "too_large" in out and "upload_refused" not in out
    assert "photos are at most 20 MiB (20971520 bytes)" in out
    assert "0 of 1 accepted" in out
