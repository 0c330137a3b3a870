"""`python -m visiona.emulators {anthropic|clerk|stripe|replicate}` starts a server that answers,
and stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anthropic
import pytest

from tests.support.waiting import serving
from visiona.emulators.ports import free_port


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("anthropic", "/healthz"),
        ("clerk", "/v1/jwks"),
        ("stripe", "/healthz"),
        ("replicate", "/healthz"),
    ],
)
def test_cli_serves(tmp_path: Path, name: str, path: str) -> None:
    port = free_port()
    env = {**os.environ, "CLERK_DEV_KEY_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "visiona.emulators", name, "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        body = serving(proc, f"http://127.0.0.1:{port}{path}")
        assert body
        if name == "anthropic":
            c = anthropic.Anthropic(
                api_key="sk-ant-local", base_url=f"http://127.0.0.1:{port}", max_retries=0
            )
            msg = c.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=100,
                messages=[{"role": "user", "content": "a castle"}],
            )
            assert msg.content[0].type == "text" and "castle" in msg.content[0].text
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # uvicorn shuts down gracefully, then re-raises SIGTERM on itself.
    assert proc.returncode in (0, -signal.SIGTERM)
    assert proc.stdout is not None and proc.stderr is not None
    # Quiet: no access-log lines at the default level.
    assert b"GET " not in proc.stdout.read() + proc.stderr.read()
