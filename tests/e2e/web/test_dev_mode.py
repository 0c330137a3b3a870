"""Dev sign-in never runs where anyone could be anyone in public: the server refuses to start
next to a live Clerk key or as a production build on a public origin, and a dev-mode server
answers only requests for a loopback host (web/lib/auth/mode.ts, startup.ts, proxy.ts)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.stack import RunningStack
from tests.support.web import WebApp, next_start, web_env
from visiona.emulators.ports import free_port

EX_CONFIG = 78


@pytest.mark.parametrize(
    ("settings", "why"),
    [
        (
            {"CLERK_SECRET_KEY": "sk_live_x"},
            "dev sign-in refuses to run with a live Clerk key",
        ),
        (
            {"NODE_ENV": "production", "VISIONA_WEB_URL": "https://visiona.example"},
            "dev sign-in runs in a production build only on a loopback origin",
        ),
    ],
    ids=["live-clerk-key", "public-origin"],
)
def test_dev_sign_in_refuses_to_start(
    stack: RunningStack, tmp_path: Path, settings: dict[str, str], why: str
) -> None:
    port = free_port()
    log = tmp_path / "web.log"
    proc = next_start(port, web_env(stack, port, **settings), log)
    try:
        status = proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"next start kept running: {log.read_text()[-2000:]}")
    said = log.read_text()
    assert status == EX_CONFIG, said
    assert f"visiona-web refuses to start: {why}" in said


def test_a_dev_mode_server_answers_only_requests_for_a_loopback_host(web: WebApp) -> None:
    public = {"Host": "visiona.example"}
    for path in ("/", "/sign-in", "/dashboard"):
        refused = httpx.get(f"{web.url}{path}", headers=public)
        assert refused.status_code == 403, (path, refused.text)
        assert "dev sign-in answers only on localhost" in refused.text
    signing_in = httpx.post(f"{web.url}/api/dev/session", headers=public, json={"user": "mallory"})
    assert signing_in.status_code == 403, signing_in.text
    assert "set-cookie" not in signing_in.headers
    for host in (f"localhost:{web.port}", f"127.0.0.1:{web.port}", "[::1]"):
        answered = httpx.get(f"{web.url}/sign-in", headers={"Host": host})
        assert answered.status_code == 200, (host, answered.text[:300])
