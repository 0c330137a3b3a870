"""A short chaos run inside the suite: ``bench/chaos`` with few users and faults.

The whole platform on PostgreSQL and RabbitMQ servers of the run's own (``own_servers``:
the session's servers are never touched), three users buying, uploading, training and
generating through the gateway while about 25 faults land (processes killed and stopped,
the database stopped and its postmaster killed, the broker's connections dropped, its app
stopped, its VM killed), then every invariant counted: nothing may be lost, duplicated or
unexpected. ``make chaos`` is the long run (500 faults); see README, *Chaos*.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.plugin import OwnServers

FAULTS = 25
# Starting the servers and the platform, the faults one by one, settling: minutes on a
# loaded 2-core machine. Past the limit the run is asked to stop (it tears everything
# down), then killed.
RUN_LIMIT_S = 1500


@pytest.mark.disruptive
@pytest.mark.timeout(RUN_LIMIT_S + 120)
def test_a_short_chaos_run_loses_doubles_and_invents_nothing(
    own_servers: OwnServers, repo: Path, tmp_path: Path
) -> None:
    out = tmp_path / "chaos.json"
    argv = [
        *(sys.executable, "-m", "bench.chaos"),
        *("--users", "3", "--faults", str(FAULTS), "--seed", "13"),
        *("--settle-timeout", "180", "--out", str(out)),
    ]
    with subprocess.Popen(
        argv, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        try:
            output, _ = proc.communicate(timeout=RUN_LIMIT_S)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)
            output, _ = proc.communicate(timeout=120)
            pytest.fail(f"the chaos run took over {RUN_LIMIT_S} s:\n{output[-8000:]}")
    assert out.exists(), f"the chaos run could not be made ({proc.returncode}):\n{output[-8000:]}"
    extra = json.loads(out.read_text())["extra"]
    assert extra["faults"] == FAULTS, output[-8000:]
    broken = {
        name: {c: counts[c] for c in ("lost", "duplicated", "unexpected") if counts[c]}
        for name, counts in extra["counters"].items()
    }
    assert not {n: c for n, c in broken.items() if c}, output[-8000:]
    assert proc.returncode == 0, output[-8000:]
