"""A newcomer's first hour: the README's walk-through, run as written against ``make up``.

The README's shell blocks (*Paying locally*, *Training locally*, *The CLI*) run in bash
against a ``make up`` of a checkout of the test's own (``tests/support/devstack.py``: its
``.dev`` folder in a temporary directory, free ports, a PostgreSQL of the test's own, the
session's broker), changed only where they name the default gateway address or the current
folder. ``make -s token`` and ``make -s photos`` are the real targets.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.chaos.servers import PrivatePostgres
from tests.support.devstack import DevStack, broker_names, dev_env, dev_stack
from tests.support.infra import Infra, purge_broker
from tests.support.plugin import OwnServers
from tests.support.waiting import wait_for
from visiona.emulators.devstack import DEFAULT_PORTS
from visiona.emulators.stack import read_env_file

# Each block runs in one bash; the README's loops end themselves (a training: about a minute).
SCRIPT_TIMEOUT_S = 600


def shell_blocks(readme: str, heading: str) -> list[str]:
    """The ```sh blocks of the README section under ``heading`` (up to the next heading)."""
    start = readme.index(f"\n{heading}\n")
    end = re.compile(r"\n#{2,3} ").search(readme, start + len(heading) + 2)
    section = readme[start : end.start() if end else len(readme)]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def run_bash(
    script: str, stack: DevStack, env: dict[str, str], repo: Path
) -> subprocess.CompletedProcess[str]:
    gateway = stack.url.removeprefix("http://")
    script = script.replace("localhost:8000", gateway)
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", script],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT_S,
    )
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done


def json_lines(output: str) -> list[Any]:
    """Every JSON object the script printed at the start of a line (several may share one)."""
    decoder = json.JSONDecoder()
    found = []
    for line in output.splitlines():
        rest = line.strip()
        while rest.startswith("{"):
            value, end = decoder.raw_decode(rest)
            found.append(value)
            rest = rest[end:].strip()
    return found


def balance(stack: DevStack, user: str) -> Any:
    answer = httpx.get(f"{stack.url}/v1/billing/balance", headers=stack.auth(user), timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_readme_opens_with_make_up_and_the_url_it_prints(repo: Path) -> None:
    """A newcomer reads the first lines only: run ``make up``, open the web app at the URL
    ``make up`` prints first (its default port, config/local.env's), then ``make test``."""
    opening = (repo / "README.md").read_text().split("\n\n", 2)[1]
    web_port = read_env_file(repo / "config" / "local.env")["WEB_PORT"]
    assert DEFAULT_PORTS["web"] == int(web_port)
    url = f"http://localhost:{web_port}"
    assert opening.index("`make up`") < opening.index(url) < opening.index("`make test`"), opening
    assert "prints first" in opening, opening


# A make up (minutes on a loaded machine), two trainings of about a minute, a generation.
@pytest.mark.timeout(1500)
def test_the_readme_walkthrough_runs_as_written_against_make_up(
    own_servers: OwnServers, infra: Infra, repo: Path, tmp_path: Path
) -> None:
    if shutil.which("jq") is None:
        pytest.fail("the README's walk-through needs jq", pytrace=False)
    readme = (repo / "README.md").read_text()
    (paying,) = shell_blocks(readme, "### Paying locally")
    (training,) = shell_blocks(readme, "### Training locally")
    cli = shell_blocks(readme, "### The CLI")[0]
    postgres = PrivatePostgres(Path(tempfile.mkdtemp(prefix="visiona-readme-")))
    postgres.init()
    postgres.start()
    dev_dir = tmp_path / "checkout" / ".dev"
    env = dev_env(dev_dir, postgres.admin_url, infra.amqp_url)
    try:
        with dev_stack(env, tmp_path / "make-up.log") as stack:
            stack.wait_ready()
            shell_env = env | {
                "VISIONA_CONFIG": str(tmp_path / "cli" / "config.json"),
                "VISIONA_GATEWAY": stack.url,
                "VISIONA_DEV_ISSUER": stack.emulator_url("clerk"),
            }

            # Paying locally, then Training locally, in one shell (as the README says).
            done = run_bash(paying + training, stack, shell_env, repo)
            answers = json_lines(done.stdout)
            assert {"status": "complete", "payment_status": "paid"} in answers, done.stdout
            photos = [a for a in answers if set(a) == {"status", "reasons", "faces"}]
            assert len(photos) == 10 and {p["status"] for p in photos} == {"accepted"}, photos
            seen = [a for a in answers if set(a) == {"status", "progress"}]
            # Seen training, its progress rising, before it succeeded.
            running = [s["progress"] for s in seen if s["status"] == "training"]
            assert running and any(0 < p < 1 for p in running), seen
            assert running == sorted(running), seen
            assert seen[-1] == {"status": "succeeded", "progress": 1.0}, seen
            assert re.search(r"^visiona/vsn-[0-9a-f]{32}:[0-9a-f]{64}$", done.stdout, re.M)
            wait_for(
                "alice's 50 credits", lambda: balance(stack, "alice")["balance"], lambda b: b == 50
            )

            # The CLI, as bob, with visiona on PATH as the README says.
            cli_script = cli.replace("--out ./images", f"--out {tmp_path / 'images'}")
            done = run_bash(cli_script, stack, shell_env, repo)
            assert "Signed in as bob" in done.stdout, done.stdout
            assert "200 credits added" in done.stdout, done.stdout
            assert re.search(r"^\s*training \d+%$", done.stdout, re.M), done.stdout
            assert "Ready:" in done.stdout, done.stdout
            assert len(list((tmp_path / "images").iterdir())) == 2
            assert "42 credits available" in done.stdout, done.stdout
    finally:
        postgres.stop()
        shutil.rmtree(postgres.root, ignore_errors=True)
        if names := broker_names(dev_dir):
            asyncio.run(purge_broker(infra, names))
