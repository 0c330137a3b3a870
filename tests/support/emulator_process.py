"""One provider emulator as its own process (``python -m visiona.emulators <name>``), to be
stopped, killed and started again on the same port and state folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from visiona.emulators.ports import free_port
from visiona.emulators.stack import wait_or_kill


@dataclass
class EmulatorProcess:
    name: str
    state_dir: Path
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *extra: str, timeout_s: float = 30.0) -> None:
        log_path = self.log_path or self.state_dir.parent / f"{self.name}.log"
        argv = [
            *(sys.executable, "-m", "visiona.emulators", self.name),
            *("--port", str(self.port), "--state-dir", str(self.state_dir)),
            *self.args,
            *extra,
        ]
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv, env=os.environ | self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout_s
        health = "/v1/jwks" if self.name == "clerk" else "/healthz"
        while True:
            assert self.process.poll() is None, log_path.read_text()[-3000:]
            try:
                if httpx.get(self.url + health, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"the {self.name} emulator did not come up"
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM, as a developer's Ctrl-C of ``make up`` does."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: no clean-up at all."""
        self._end(signal.SIGKILL)

    def _end(self, sig: signal.Signals) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
        wait_or_kill(self.process, 15)
        self.process = None
