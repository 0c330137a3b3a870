"""A private PostgreSQL and a private RabbitMQ node for one chaos run, and their faults.

Both live in the run's temporary folder, on free ports, and are stopped and killed on the way
out; the shared servers (5432, 5672) are never touched.

PostgreSQL: ``initdb`` (trust auth, superuser ``postgres``) and the server from the version's
bin folder (``pg_config --bindir``, else the newest ``/usr/lib/postgresql/<ver>/bin``), stock
settings apart from the port, ``listen_addresses`` and the socket folder. Both refuse to run
as root, so as root they run as the ``postgres`` OS user (``runuser``) in a folder it owns.
The postmaster is started as our child process rather than daemonised by ``pg_ctl start``:
a daemonised postmaster is re-parented to PID 1, and after a ``kill -9`` its zombie would
keep ``postmaster.pid`` looking alive, so the next start could be refused. ``pg_ctl stop``
does the stops (``-m immediate`` is the fault, ``-m fast`` the clean-up).

RabbitMQ: ``rabbitmq-server`` with its own node name, AMQP and distribution ports, data, log,
pid, plugins (none) and config files in the folder, run as the current user with ``HOME`` in
the folder, where an Erlang cookie of its own is written first; ``rabbitmqctl -n <node>``
then runs with the same ``HOME``, so the cookies match. The distribution's wrapper scripts in
``/usr/sbin`` would switch to the ``rabbitmq`` user and its cookie; the scripts they wrap
(``/usr/lib/rabbitmq/bin``) are used instead. Neither ``/etc/rabbitmq/rabbitmq.conf`` (which
names the shared listener's port) nor ``rabbitmq-env.conf`` is read. The shared ``epmd`` is
used as it is (a node registers there by name; it is not ours to stop).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import string
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from visiona.emulators.ports import free_port


class ServerError(RuntimeError):
    """A private server could not be started, stopped or asked something."""


def _as_postgres() -> list[str]:
    """The prefix that runs a command as the ``postgres`` OS user when we are root."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        raise ServerError("running as root needs runuser (util-linux) to start PostgreSQL")
    return [runuser, "-u", "postgres", "--"]


def postgres_bindir() -> Path:
    """The folder of ``initdb``, ``postgres`` and ``pg_ctl``."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        done = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if done.returncode == 0 and done.stdout.strip():
            candidates.append(Path(done.stdout.strip()))
    versions = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()),
        key=lambda p: int(p.parent.name),
        reverse=True,
    )
    candidates += versions
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    for folder in candidates:
        if all((folder / name).is_file() for name in ("initdb", "postgres", "pg_ctl")):
            return folder
    raise ServerError(
        "PostgreSQL's server binaries (initdb, postgres, pg_ctl) were not found: install the "
        "server package (e.g. postgresql-15) or put its bin folder first on PATH"
    )


def rabbitmq_sbindir() -> Path:
    """The folder of the real ``rabbitmq-server`` and ``rabbitmqctl`` scripts."""
    candidates = [Path("/usr/lib/rabbitmq/bin")]
    found = shutil.which("rabbitmq-server")
    if found:
        candidates.append(Path(found).resolve().parent)
    for folder in candidates:
        if (folder / "rabbitmq-server").exists() and (folder / "rabbitmqctl").exists():
            return folder
    raise ServerError("rabbitmq-server and rabbitmqctl were not found")


def _kill_9(pid: int | None, proc: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL ``pid`` (gone already is fine), then reap ``proc``, the process that runs it."""
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _wait_exit(proc, 30)


def _wait_exit(proc: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
    if proc is None:
        return
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _tail(path: Path, chars: int = 2000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


# --- PostgreSQL --------------------------------------------------------------------------------


@dataclass
class PrivatePostgres:
    root: Path  # the run's folder; the server's own is root / "pg"

    def __post_init__(self) -> None:
        self.bindir = postgres_bindir()
        self.port = free_port()
        self.folder = self.root / "pg"
        self.data = self.folder / "data"
        self.log_path = self.folder / "postgres.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.runas = _as_postgres()

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.runas, *argv], capture_output=True, text=True, timeout=timeout_s
        )

    def init(self) -> None:
        self.folder.mkdir(parents=True)
        if self.runas:
            # The postgres user must reach its folder through ours.
            self.root.chmod(0o711)
            shutil.chown(self.folder, "postgres", "postgres")
        done = self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-instructions",
        )
        if done.returncode != 0:
            raise ServerError(f"initdb failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")

    @property
    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout_s: float = 90.0) -> None:
        """Start the postmaster and wait until it accepts connections. After a ``kill -9``
        the old backends may still hold the shared memory for a moment: the postmaster then
        refuses to start, and it is started again until they are gone."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    [
                        *self.runas,
                        str(self.bindir / "postgres"),
                        "-D",
                        str(self.data),
                        "-p",
                        str(self.port),
                        "-k",
                        str(self.folder),
                        "-c",
                        "listen_addresses=127.0.0.1",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            while self.process.poll() is None:
                if self.accepts_connections():
                    return
                if time.monotonic() > deadline:
                    raise ServerError("PostgreSQL did not start:\n" + _tail(self.log_path))
                time.sleep(0.1)
            if time.monotonic() > deadline:
                raise ServerError("PostgreSQL did not start:\n" + _tail(self.log_path))
            time.sleep(0.3)

    def accepts_connections(self) -> bool:
        try:
            with psycopg.connect(self.admin_url, connect_timeout=2, autocommit=True) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def stop_immediate(self) -> None:
        """``pg_ctl stop -m immediate``: every backend quits at once, no checkpoint (a crash
        as far as the data is concerned: the next start recovers from the WAL)."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        _wait_exit(self.process, 30)
        self.process = None

    def kill_postmaster(self) -> None:
        """``kill -9`` of the postmaster; its backends notice and exit on their own."""
        _kill_9(self.postmaster_pid, self.process)
        self.process = None

    def stop(self) -> None:
        """The clean-up: a fast shutdown, else kill."""
        if self.running():
            done = self._run(
                str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-t", "20", "stop"
            )
            if done.returncode != 0:
                self.kill_postmaster()
        _wait_exit(self.process, 20)
        self.process = None


# --- RabbitMQ ------------------------------------------------------------------------------------


@dataclass
class PrivateRabbitMQ:
    root: Path
    name: str  # the node's short name; the node is <name>@localhost

    def __post_init__(self) -> None:
        self.sbin = rabbitmq_sbindir()
        self.port = free_port()
        self.dist_port = free_port()
        self.node = f"{self.name}@localhost"
        self.folder = self.root / "rabbitmq"
        self.home = self.folder / "home"
        self.log_path = self.folder / "rabbitmq.log"
        self.pid_file = self.folder / "rabbitmq.pid"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def env(self) -> dict[str, str]:
        f = self.folder
        return {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))} | {
            "HOME": str(self.home),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(f / "mnesia"),
            "RABBITMQ_LOG_BASE": str(f / "log"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(f / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(f / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(f / "rabbitmq.conf"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def init(self) -> None:
        for sub in ("home", "mnesia", "log"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        (self.folder / "enabled_plugins").write_text("[].\n")
        (self.folder / "rabbitmq-env.conf").write_text("")
        (self.folder / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
        )
        cookie = self.home / ".erlang.cookie"
        cookie.write_text("".join(secrets.choice(string.ascii_uppercase) for _ in range(20)))
        cookie.chmod(0o400)

    def ctl(self, *args: str, timeout_s: float = 60, check: bool = True) -> str:
        try:
            done = subprocess.run(
                [str(self.sbin / "rabbitmqctl"), "-n", self.node, *args],
                env=self.env(),
                capture_output=True,
                text=True,
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired as exc:
            raise ServerError(f"rabbitmqctl {' '.join(args)} timed out") from exc
        if check and done.returncode != 0:
            raise ServerError(
                f"rabbitmqctl {' '.join(args)} failed ({done.returncode}): "
                f"{(done.stderr or done.stdout)[-1500:]}"
            )
        return done.stdout

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout_s: float = 120.0) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(self.sbin / "rabbitmq-server")],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.await_app(timeout_s)

    def await_app(self, timeout_s: float = 120.0) -> None:
        """Until the node runs the broker (``await_startup`` fails at once while the node is
        not registered yet, so it is asked again)."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise ServerError("RabbitMQ exited while starting:\n" + _tail(self.log_path))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ServerError("RabbitMQ did not start:\n" + _tail(self.log_path))
            try:
                self.ctl("await_startup", "--timeout", str(max(1, int(remaining))))
                return
            except ServerError:
                time.sleep(0.5)

    @property
    def beam_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return self.process.pid if self.process is not None else None

    def close_all_connections(self) -> None:
        self.ctl("close_all_connections", "chaos: the nemesis closes every connection")

    def stop_app(self) -> None:
        self.ctl("stop_app")

    def start_app(self) -> None:
        self.ctl("start_app")
        self.await_app()

    def kill(self) -> None:
        """``kill -9`` of the node's Erlang VM."""
        _kill_9(self.beam_pid, self.process)
        self.process = None
        self.pid_file.unlink(missing_ok=True)

    def queues(self) -> list[dict[str, Any]]:
        """Every queue: name, messages ready and unacknowledged."""
        out = self.ctl(
            "list_queues",
            "name",
            "messages_ready",
            "messages_unacknowledged",
            "--formatter",
            "json",
            "--quiet",
        )
        start = out.find("[")
        return list(json.loads(out[start:])) if start >= 0 else []

    def stop(self) -> None:
        """The clean-up: the node stops itself, else it is killed."""
        if self.running():
            try:
                self.ctl("stop", timeout_s=30)
            except ServerError:
                self.kill()
        _wait_exit(self.process, 30)
        self.process = None
