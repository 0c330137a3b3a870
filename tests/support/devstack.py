"""``make up`` as a test runs it: ``visiona-dev up`` for a checkout of its own (a ``.dev``
folder in a temporary directory), on free ports, stopped with Ctrl-C as a terminal sends it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from visiona.emulators.clerk import DevIssuer, load_or_create_key
from visiona.emulators.devstack import ENV_PORTS
from visiona.emulators.ports import free_port, free_port_with
from visiona.emulators.stack import WEED_PORTS

# A stack's first start on a loaded 2-core machine: migrations, then ten processes importing.
READY_TIMEOUT_S = 240
# Ctrl-C until ``make up`` has exited: the services, then SeaweedFS's clean stop (about 15 s).
STOP_TIMEOUT_S = 90


def s3_port() -> int:
    """A free S3 port whose SeaweedFS ports (10 001 to 10 007 above it) are free too, all
    reserved (visiona.emulators.ports) until this session ends."""
    return free_port_with([10_000 + n for n in range(1, len(WEED_PORTS) + 1)])


@dataclass
class DevStack:
    """One checkout's ``make up``, running."""

    dev_dir: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['GATEWAY_PORT']}"

    @property
    def web_url(self) -> str:
        """The web app, where ``make up`` tells a newcomer to open it."""
        return f"http://localhost:{self.env['WEB_PORT']}"

    def emulator_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.env[ENV_PORTS[name]]}"

    def service_env(self, service: str) -> dict[str, str]:
        """The environment a service of this stack runs with, read from the process itself."""
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
                # A console script runs as "python <script>": either may name it.
                if not any(a.endswith(f"/visiona-{service}".encode()) for a in argv[:2]):
                    continue
                pairs = (proc / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            env = dict(p.decode().split("=", 1) for p in pairs if b"=" in p)
            if env.get("VISIONA_DEV_DIR") == str(self.dev_dir):
                return env
        raise AssertionError(f"no {service} process of the stack in {self.dev_dir}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def issuer(self) -> DevIssuer:
        return load_or_create_key(self.dev_dir / "clerk", issuer=self.emulator_url("clerk"))

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.issuer().issue(user)}"}

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"make up exited ({self.process.returncode}):\n{self.output()[-6000:]}"
                )
            try:
                answer = httpx.get(f"{self.url}/readyz", timeout=2)
                if answer.status_code == 200:
                    return
                last = answer.text
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise AssertionError(f"make up did not become ready: {last}\n{self.output()[-6000:]}")

    def interrupt(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """Ctrl-C, as a terminal sends it (to the foreground process group); the exit status."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise AssertionError(
                f"make up did not stop within {timeout_s} s of Ctrl-C:\n{self.output()[-6000:]}"
            ) from None


def broker_names(dev_dir: Path) -> tuple[str, ...]:
    """The queue prefix and exchange of the stack of ``dev_dir`` (none before it made its id),
    to purge from the broker afterwards."""
    stack_id = dev_dir / "stack-id"
    if not stack_id.exists():
        return ()
    name = stack_id.read_text().strip()
    return (f"{name}.", f"visiona.events.{name}") if name else ()


def dev_env(
    dev_dir: Path, admin_url: str, amqp_url: str, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a checkout's ``make up``: its ``.dev`` folder, the servers, free
    ports."""
    env = {var: str(free_port()) for name, var in ENV_PORTS.items() if name != "s3"}
    env["S3_PORT"] = str(s3_port())
    # Nothing of the developer's own stack settings leaks in.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("VISIONA_")}
    return (
        inherited
        | env
        | {
            "VISIONA_DEV_DIR": str(dev_dir),
            "VISIONA_ADMIN_DATABASE_URL": admin_url,
            "VISIONA_AMQP_URL": amqp_url,
            "PYTHONUNBUFFERED": "1",
        }
        | dict(extra or {})
    )


def start_dev_stack(env: Mapping[str, str], log_path: Path) -> DevStack:
    """``make up`` (``visiona-dev up``) in a process group of its own, as a terminal runs it."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "visiona.emulators.devstack", "up"],
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return DevStack(Path(env["VISIONA_DEV_DIR"]), dict(env), process, log_path)


@contextlib.contextmanager
def dev_stack(env: Mapping[str, str], log_path: Path) -> Iterator[DevStack]:
    """A running ``make up``, interrupted on the way out if the test has not."""
    stack = start_dev_stack(env, log_path)
    try:
        yield stack
    finally:
        if stack.process.poll() is None:
            with contextlib.suppress(AssertionError):
                stack.interrupt()
