"""The web app beside the whole platform, for ``web_vitals`` and ``web_generation_share``.

:func:`web_platform` makes sure the production build is current (``make web``: ``web/.next``),
starts :func:`bench.generation_flow.full_platform` with the web app's origin first in the
stack's ``web_origins`` (the gateway's CORS and Clerk authorized parties, Stripe's return), and
serves the build with ``next start`` on a free port of its own, with the environment the app
runs with under ``make up``: dev sign-in against the stack's dev issuer, the gateway as the
browser reaches it (``localhost``) and as the server does (``127.0.0.1``).

Users are made through the gateway with session tokens the dev issuer mints for the web origin
(``POST /_dev/tokens`` with ``azp`` = the origin), the same kind of token the app's own sign-in
keeps in its ``__session`` cookie; a browser gets that cookie to be signed in as the user.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from bench.common import BenchError
from bench.generation_flow import (
    FullPlatform,
    User,
    full_platform,
    make_ready,
)
from visiona.emulators.ports import free_port
from visiona.emulators.stack import stop_process

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"
# Debian's Chromium, for Lighthouse and Playwright alike.
CHROMIUM = os.environ.get("CHROME_PATH", "/usr/bin/chromium")
CHROME_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
)
SESSION_COOKIE = "__session"
# Long enough that no token is renewed during a run.
TOKEN_TTL_S = 4 * 3600
SERVER_READY_TIMEOUT_S = 90.0


def node_binary() -> str:
    """The pinned Node.js (linked into .venv/bin by ``make install``)."""
    pinned = ROOT / ".venv" / "bin" / "node"
    if not pinned.exists():
        raise BenchError(f"{pinned} is missing: run `make install`")
    return str(pinned)


def ensure_build() -> str:
    """``make web`` (a no-op when ``web/.next`` is newer than every source); the BUILD_ID."""
    built = subprocess.run(["make", "-s", "web"], cwd=ROOT, capture_output=True, text=True)
    if built.returncode != 0:
        raise BenchError(f"`make web` failed:\n{(built.stdout + built.stderr)[-3000:]}")
    return (WEB / ".next" / "BUILD_ID").read_text().strip()


@dataclass
class WebPlatform:
    stack: FullPlatform
    origin: str  # http://localhost:<port>, as the browser reaches the app
    build_id: str
    server: subprocess.Popen[bytes]

    @property
    def api_url(self) -> str:
        """The gateway as the browser reaches it (the same host name as the app)."""
        return f"http://localhost:{self.stack.cfg.ports['gateway']}"


def server_env(stack: FullPlatform, origin: str) -> dict[str, str]:
    gateway = stack.cfg.ports["gateway"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VISIONA_", "NEXT_", "CLERK_"))}
    return env | {
        "PATH": f"{Path(node_binary()).parent}{os.pathsep}{env.get('PATH', '')}",
        "NODE_ENV": "production",
        "NEXT_TELEMETRY_DISABLED": "1",
        "VISIONA_AUTH_MODE": "dev",
        "VISIONA_API_URL": f"http://localhost:{gateway}",
        "VISIONA_GATEWAY_INTERNAL_URL": f"http://127.0.0.1:{gateway}",
        "VISIONA_WEB_URL": origin,
        "VISIONA_DEV_ISSUER_URL": stack.cfg.clerk_issuer,
        "VISIONA_DEV_TOKEN_TTL_S": str(TOKEN_TTL_S),
    }


def _wait_served(origin: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + SERVER_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise BenchError(f"next start exited {server.returncode}:\n{log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{origin}/", timeout=10).status_code == 200:
                return
        time.sleep(0.25)
    raise BenchError(f"the web app did not answer on {origin}:\n{log.read_text()[-2000:]}")


@contextlib.contextmanager
def web_platform(label: str, extra_env: dict[str, str] | None = None) -> Iterator[WebPlatform]:
    """The whole platform and the web app's production build served beside it; all of it
    stopped on the way out (the logs kept on failure, the web app's in ``logs/web.log``)."""
    build_id = ensure_build()
    port = free_port()
    origin = f"http://localhost:{port}"
    with full_platform(label, extra_env, web_origins=(origin,)) as stack:
        logs = stack.cfg.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / "web.log"
        log: IO[bytes] = log_path.open("wb")
        server = subprocess.Popen(
            [
                node_binary(),
                str(WEB / "node_modules" / "next" / "dist" / "bin" / "next"),
                "start",
                "--port",
                str(port),
                "--hostname",
                "127.0.0.1",
            ],
            cwd=WEB,
            env=server_env(stack, origin),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_served(origin, server, log_path)
            yield WebPlatform(stack, origin, build_id, server)
        finally:
            stop_process(server, 15.0)
            log.close()


# --- users --------------------------------------------------------------------------------------


@dataclass
class WebUser(User):
    token: str = ""  # the session token: the Bearer of `client`, the browser's __session cookie


async def mint_token(web: WebPlatform, name: str, ttl_s: int = TOKEN_TTL_S) -> str:
    """A session token for ``name`` from the dev issuer, for the web origin (``azp``)."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            f"{web.stack.cfg.clerk_issuer}/_dev/tokens",
            json={"user": name, "azp": web.origin, "ttl_s": ttl_s},
        )
    if response.status_code != 200:
        raise BenchError(f"the dev issuer answered {response.status_code}: {response.text[:300]}")
    return str(response.json()["token"])


async def web_user(web: WebPlatform, label: str) -> WebUser:
    name = f"bench{label}{uuid.uuid4().hex[:6]}"
    token = await mint_token(web, name)
    client = httpx.AsyncClient(
        base_url=web.stack.cfg.gateway_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    return WebUser(name, client, token=token)


async def ready_web_user(web: WebPlatform, label: str) -> WebUser:
    """A user with the Pro pack's credits and a trained model, all through the gateway."""
    user = await web_user(web, label)
    await make_ready(user, asyncio.Lock())
    return user


def session_cookie(web: WebPlatform, user: WebUser) -> dict[str, Any]:
    """The app's sign-in cookie for ``user``, as Playwright's ``add_cookies`` and the DevTools
    protocol's ``Storage.setCookies`` take it."""
    return {
        "name": SESSION_COOKIE,
        "value": user.token,
        "domain": "localhost",
        "path": "/",
        "sameSite": "Lax",
        "secure": False,
        "httpOnly": False,
        "expires": int(time.time()) + TOKEN_TTL_S,
    }
