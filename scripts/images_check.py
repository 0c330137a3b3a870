"""The checks of scripts/images.py: each image's config, what its filesystem must not hold, and
that its own entry point starts and answers its health check.

Containers cannot run here, so an image runs as a container would without one: its root
filesystem (``podman image mount``, read-only) is the process's root (chroot), /proc, /dev and
/sys are bound in, /tmp (and the web app's Next cache) is a fresh tmpfs as the Kubernetes
manifests give a read-only container, the process runs as the image's user with exactly the
image's ENTRYPOINT, CMD, environment and working directory, plus the settings a deployment
gives, on the host network. The services' settings are the ones the test stacks use
(visiona.emulators.stack), pointed at a database, exchange and queue prefix of this run only.
The ops image is a job, not a server: its own ``visiona-ops backup`` (pg_dump as a backup role,
as the CronJob runs it) dumps the run's migrated database and copies its bucket into a backup
bucket, then its ``visiona-ops list`` must name that backup.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shlex
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from images_base import podman

USER = "10001"
READY_TIMEOUT_S = float(os.environ.get("VISIONA_IMAGES_READY_TIMEOUT_S", "180"))
# Nothing that builds, installs, tests or lints code belongs in a runtime image.
FORBIDDEN_PROGRAMS = frozenset(
    {
        "gcc", "cc", "c++", "g++", "cpp", "clang", "ld", "as", "make", "cmake", "git",
        "pip", "pip3", "pip3.11", "uv", "hatch", "pytest", "py.test", "ruff", "mypy",
        "npm", "npx", "yarn", "corepack", "visiona-dev",
    }
)  # fmt: skip
# The PostgreSQL client is the ops image's job (visiona-ops runs pg_dump and pg_restore); no
# service runs it, so no service image holds it.
POSTGRES_CLIENT = frozenset({"pg_dump", "pg_dumpall", "pg_restore", "psql"})
OPS = "ops"
FORBIDDEN_PACKAGES = frozenset(
    {"pip", "setuptools", "_pytest", "pytest", "ruff", "mypy", "hatchling", "playwright"}
)
FORBIDDEN_DIRS = frozenset({"tests", ".git"})
# Our emulators (the fake Stripe, Replicate, Clerk, ...) are for development only.
FORBIDDEN_PATHS = ("opt/venv/lib/python3.11/site-packages/visiona/emulators",)


@dataclass
class CheckResult:
    image: str
    size_mb: float = 0.0
    user: str = "?"
    health: str = "not started"
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def inspect(image: str, storage: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(podman(*storage, "image", "inspect", image))[0]
    return data


def forbidden_programs(name: str) -> frozenset[str]:
    """The programs image ``name`` (a service, "web" or "ops") must not hold."""
    return FORBIDDEN_PROGRAMS if name == OPS else FORBIDDEN_PROGRAMS | POSTGRES_CLIENT


VIRTUAL_DIRS = frozenset({"proc", "sys", "dev"})


def forbidden_in(
    rootfs: Path, programs: frozenset[str] = FORBIDDEN_PROGRAMS | POSTGRES_CLIENT
) -> list[str]:
    """What the filesystem holds that a runtime image must not (paths relative to its root);
    ``programs`` are the names no bin or sbin folder may hold."""
    found = [f"/{rel}" for rel in FORBIDDEN_PATHS if (rootfs / rel).exists()]
    for folder, dirs, files in os.walk(rootfs):
        here = Path(folder)
        rel = here.relative_to(rootfs)
        for name in dirs:
            if name in FORBIDDEN_DIRS or (
                here.name == "site-packages" and name in FORBIDDEN_PACKAGES
            ):
                found.append(f"/{rel / name}/")
        # Not into what was found, nor into the kernel's filesystems a mounted rootfs may have
        # bound in (/proc, /sys, /dev): they are not the image's.
        dirs[:] = [
            d
            for d in dirs
            if f"/{rel / d}/" not in found and not (rel == Path() and d in VIRTUAL_DIRS)
        ]
        if here.name in ("bin", "sbin"):
            found += [f"/{rel / name}" for name in files if name in programs]
    return sorted(found)


@contextmanager
def mounted(image: str, storage: list[str], writable: tuple[str, ...]) -> Iterator[Path]:
    """The image's root filesystem, with /proc, /dev and /sys bound in and tmpfs on
    ``writable``; everything unmounted afterwards."""
    rootfs = Path(podman(*storage, "image", "mount", image))
    mounts: list[Path] = []
    try:
        for host in ("/proc", "/dev", "/sys"):
            target = rootfs / host.lstrip("/")
            subprocess.run(["mount", "--rbind", host, str(target)], check=True)
            subprocess.run(["mount", "--make-rslave", str(target)], check=True)
            mounts.append(target)
        for path in writable:
            target = rootfs / path.lstrip("/")
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"mode=1777,uid={USER}", "tmpfs", str(target)],
                check=True,
            )
            mounts.append(target)
        yield rootfs
    finally:
        for target in reversed(mounts):
            subprocess.run(["umount", "-R", "-l", str(target)], check=False)
        podman(*storage, "image", "unmount", image)


@dataclass
class Process:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_in(
    rootfs: Path, config: dict[str, Any], argv: list[str], env: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    """``argv`` in the image's root filesystem, as the image's user, in its working directory,
    with its environment (``env`` adds a deployment's settings on top)."""
    image_env = dict(item.split("=", 1) for item in config.get("Env") or [])
    environment = image_env | env
    uid, _, gid = (config.get("User") or "0").partition(":")
    workdir = config.get("WorkingDir") or "/"

    def enter() -> None:
        os.chroot(rootfs)
        os.chdir(workdir)
        os.setgroups([])
        os.setgid(int(gid or uid))
        os.setuid(int(uid))

    with log.open("ab") as out:
        return subprocess.Popen(
            argv,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=enter,
            close_fds=True,
        )


class NotReady(Exception):
    """A health check's answer that is not (yet) the healthy one."""


def wait_until(check: Callable[[], str], proc: subprocess.Popen[bytes]) -> str:
    """Poll ``check`` (the healthy answer; it raises while there is none) until it answers,
    the process exits, or the deadline passes (an exception then, with the last answer)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with status {proc.returncode} ({last})")
        try:
            return check()
        except Exception as exc:  # not listening, or not healthy yet
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.5)
    raise RuntimeError(f"no health answer in {READY_TIMEOUT_S:.0f}s ({last})")


def grpc_health(port: int) -> Callable[[], str]:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    def check() -> str:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=3)
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        if status != "SERVING":
            raise NotReady(f"grpc health {status}")
        return f"grpc health {status}"

    return check


def http_ok(port: int, paths: tuple[str, ...]) -> Callable[[], str]:
    def check() -> str:
        answers = []
        for path in paths:
            url = f"http://127.0.0.1:{port}{path}"
            try:
                with urllib.request.urlopen(url, timeout=10) as reply:
                    answers.append(f"{path} {reply.status}")
            except urllib.error.HTTPError as exc:
                body = exc.read()[:300].decode(errors="replace")
                raise NotReady(f"{path} {exc.code} {body}") from None
        return ", ".join(answers)

    return check


class Run:
    """One throwaway environment for the services: a database provisioned for them, an
    exchange and queue prefix of its own, an S3 (the tests' SeaweedFS, with SSE-S3) of its
    own, ports free on this machine."""

    def __init__(self, service_ports: dict[str, int]) -> None:
        from visiona.emulators.ports import free_port
        from visiona.emulators.stack import SeaweedFS, StackConfig

        token = secrets.token_hex(4)
        self.state = tempfile.TemporaryDirectory(prefix="visiona-images-")
        self.sse_key = secrets.token_urlsafe(24)
        self.seaweedfs = SeaweedFS(
            Path(self.state.name) / "s3", "images", secrets.token_urlsafe(24), sse_key=self.sse_key
        )
        ports = {name: free_port() for name in service_ports}
        ports |= {name: free_port() for name in ("clerk", "stripe", "replicate", "anthropic")}
        self.web_port = free_port()
        self.cfg = StackConfig(
            admin_url=os.environ.get(
                "VISIONA_ADMIN_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
            ),
            database=f"visiona_images_{token}",
            amqp_url=os.environ.get("VISIONA_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
            ports=ports,
            state_dir=Path(self.state.name),
            role_suffix=f"_img{token}",
            exchange=f"visiona-images-{token}.events",
            queue_prefix=f"visiona-images-{token}.",
            log_format="json",
            s3=self.seaweedfs.s3,
            s3_sse="s3",
            s3_sse_key=self.sse_key,
        )
        self.provisioned: list[Any] = []
        self.identity: subprocess.Popen[bytes] | None = None
        # What the backup CronJob dumps as (docs/adr/0014): reads every row, owns nothing.
        self.backup_role = f"visiona_backup_img{token}"
        self.backup_role_made = False

    def start(self) -> None:
        from visiona.emulators.stack import configure_bucket
        from visiona.kit.provision import provision

        self.seaweedfs.start()
        configure_bucket(self.seaweedfs.s3, self.cfg.web_origins)
        self.identity = start_clerk(self.cfg)
        self.provisioned = provision(
            self.cfg.admin_url, self.cfg.database, suffix=self.cfg.role_suffix
        )

    def make_backup_role(self) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.cfg.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN BYPASSRLS IN ROLE pg_read_all_data").format(
                    sql.Identifier(self.backup_role)
                )
            )
        self.backup_role_made = True

    def ops_env(self) -> dict[str, str]:
        """visiona-ops's settings as the CronJob's: the run's database as the backup role,
        its bucket into ``<bucket>-backups``, SSE-S3."""
        from psycopg.conninfo import make_conninfo

        url = make_conninfo(self.cfg.admin_url, dbname=self.cfg.database, user=self.backup_role)
        return self.cfg.backup_env() | {"BACKUP_DATABASE_URL": url}

    def seed_object(self, key: str, data: bytes) -> None:
        """An object in the run's bucket, for a backup to copy."""
        import io

        from minio import Minio

        s3 = self.seaweedfs.s3
        client = Minio(s3.endpoint, s3.access_key, s3.secret_key, secure=s3.secure)
        client.put_object(s3.bucket, key, io.BytesIO(data), len(data))

    def env(self, service: str) -> dict[str, str]:
        if service == "gateway":
            return self.cfg.gateway_env() | {"GATEWAY_HOST": "127.0.0.1"}
        return self.cfg.service_env(service)

    def close(self) -> None:
        from visiona.kit.provision import drop

        if self.identity is not None:
            self.identity.terminate()
            self.identity.wait()
        self.seaweedfs.stop()
        if self.provisioned:
            drop(self.cfg.admin_url, self.cfg.database, self.provisioned)
        if self.backup_role_made:
            import psycopg
            from psycopg import sql

            with psycopg.connect(self.cfg.admin_url, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(self.backup_role))
                )
        # The run's queues and exchange (names unique to it; rabbitmqctl lists them).
        prefixes = (self.cfg.exchange, self.cfg.queue_prefix)
        names = {}
        for kind in ("queues", "exchanges"):
            listed = subprocess.run(
                ["rabbitmqctl", "-q", f"list_{kind}", "name"],
                check=True,
                text=True,
                capture_output=True,
            ).stdout
            names[kind] = [n for n in listed.split() if n.startswith(prefixes)]
        asyncio.run(self._delete(names["queues"], names["exchanges"]))
        self.state.cleanup()

    async def _delete(self, queues: list[str], exchanges: list[str]) -> None:
        import aio_pika

        connection = await aio_pika.connect(self.cfg.amqp_url)
        async with connection:
            channel = await connection.channel()
            for queue in queues:
                await channel.queue_delete(queue)
            for exchange in exchanges:
                await channel.exchange_delete(exchange)


def start_clerk(cfg: Any) -> subprocess.Popen[bytes]:
    """The identity provider the gateway's readiness asks for its session-token keys (JWKS):
    the stacks' local Clerk issuer, from this machine's venv, as the tests run it."""
    from visiona.emulators.stack import bin_path, wait_for_port

    port = cfg.ports["clerk"]
    log = cfg.state_dir / "clerk.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [bin_path("visiona-emulator"), "clerk", "--port", str(port)],
            env=cfg.base_env() | cfg.clerk_env() | cfg.provider_state_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if not wait_for_port(port, 60):
        proc.kill()
        raise RuntimeError(f"the local Clerk issuer did not start:\n{log.read_text()[-1500:]}")
    return proc


def _static_checks(
    result: CheckResult, config: dict[str, Any], rootfs: Path, programs: frozenset[str]
) -> None:
    if result.user.split(":")[0] != USER:
        result.problems.append(f"runs as user {result.user!r}, not {USER} (non-root)")
    if not (config.get("Entrypoint") or config.get("Cmd")):
        result.problems.append("no ENTRYPOINT or CMD")
    found = forbidden_in(rootfs, programs)
    if found:
        shown = ", ".join(found[:8]) + (f" and {len(found) - 8} more" if len(found) > 8 else "")
        result.problems.append(f"holds what a runtime image must not: {shown}")


def check_images(
    images: dict[str, str], service_ports: dict[str, int], storage: list[str]
) -> list[CheckResult]:
    """Check every image (service name or "web" → image); the services run together (the
    gateway's readiness needs its back services), the web app beside them."""
    results = {name: CheckResult(image) for name, image in images.items()}
    configs: dict[str, dict[str, Any]] = {}
    for name, image in images.items():
        data = inspect(image, storage)
        configs[name] = data.get("Config") or {}
        results[name].size_mb = data["Size"] / 1e6
        results[name].user = configs[name].get("User") or "root"
    run = Run(service_ports)
    logs = Path(run.state.name)
    running: dict[str, Process] = {}
    with ExitStack() as stack:
        stack.callback(run.close)
        run.start()
        roots: dict[str, Path] = {}
        for name, image in images.items():
            # What a read-only container gets as emptyDir volumes (deploy/k8s).
            writable = ("/tmp", "/app/.next/cache") if name == "web" else ("/tmp",)  # noqa: S108
            roots[name] = stack.enter_context(mounted(image, storage, writable))
            _static_checks(results[name], configs[name], roots[name], forbidden_programs(name))
        stack.callback(stop_all, running)
        # The image's own migrate (its ENTRYPOINT with the migrate command) makes its schema.
        unmigrated = set()
        for name in (n for n in images if n in service_ports):
            config = configs[name]
            argv = [*(config.get("Entrypoint") or []), "migrate"]
            log = logs / f"{name}-migrate.log"
            status = run_in(roots[name], config, argv, run.env(name), log).wait()
            if status != 0:
                unmigrated.add(name)
                results[name].problems.append(
                    f"`{shlex.join(argv)}` exited {status}:\n{log.read_text()[-1500:]}"
                )
        # The backup job on the migrated database, before the servers load the machine.
        if OPS in images:
            result = results[OPS]
            try:
                result.health = ops_backup(run, roots[OPS], configs[OPS], logs)
            except Exception as exc:  # the role, the seed object or the job itself
                result.health = "no backup"
                result.problems.append(f"backup: {exc}")
            print(
                f"{result.image}: {result.size_mb:.0f} MB, user {result.user}, {result.health}",
                flush=True,
            )
        for name in (n for n in images if n not in unmigrated and n != OPS):
            config = configs[name]
            argv = [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]
            env = run.env(name) if name in service_ports else web_env(run, service_ports)
            log = logs / f"{name}.log"
            running[name] = Process(name, run_in(roots[name], config, argv, env, log), log)
        for name, process in running.items():
            if name == "gateway":
                check = http_ok(run.cfg.ports["gateway"], ("/healthz", "/readyz"))
            elif name == "web":
                # /metrics too: prom-client and the tracer are in the standalone server's bundle.
                check = http_ok(run.web_port, ("/healthz", "/", "/metrics"))
            else:
                check = grpc_health(run.cfg.ports[name])
            try:
                results[name].health = wait_until(check, process.proc)
            except RuntimeError as exc:
                results[name].health = "no answer"
                results[name].problems.append(f"health: {exc}\n{process.tail()}")
            r = results[name]
            print(
                f"{r.image}: {r.size_mb:.0f} MB, user {r.user}, {r.health}",
                flush=True,
            )
    return list(results.values())


# The first line ``visiona-ops backup`` prints (libs/ops, __main__.py).
BACKUP_REPORT = re.compile(
    r"(?m)^backup (?P<name>\S+): database \S+ \((?P<bytes>\d+) bytes, .*\), "
    r"(?P<objects>\d+) objects"
)


def backup_answer(backup_output: str, list_output: str, objects: int) -> str:
    """The ops image's health answer from what ``backup`` and then ``list`` printed: the
    backup holds a dump and at least the ``objects`` put in the bucket, and ``list`` names
    it."""
    report = BACKUP_REPORT.search(backup_output)
    if report is None:
        raise RuntimeError(f"`visiona-ops backup` reported no backup:\n{backup_output[-1500:]}")
    name = report["name"]
    if int(report["bytes"]) == 0:
        raise RuntimeError(f"backup {name} holds an empty dump")
    copied = int(report["objects"])
    if copied < objects:
        raise RuntimeError(f"backup {name} copied {copied} objects of the bucket's {objects}")
    if name not in list_output.split():
        raise RuntimeError(f"`visiona-ops list` does not name backup {name}:\n{list_output}")
    return f"backup {name} listed ({copied} object{'' if copied == 1 else 's'})"


def run_job(
    rootfs: Path, config: dict[str, Any], args: list[str], env: dict[str, str], log: Path
) -> str:
    """The image's ENTRYPOINT with ``args``, run to its end: its output (a failure raises)."""
    argv = [*(config.get("Entrypoint") or []), *args]
    proc = run_in(rootfs, config, argv, env, log)
    try:
        status = proc.wait(timeout=READY_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"`{shlex.join(argv)}` ran past {READY_TIMEOUT_S:.0f}s") from None
    output = log.read_text(errors="replace")
    if status != 0:
        raise RuntimeError(f"`{shlex.join(argv)}` exited {status}:\n{output[-1500:]}")
    return output


def ops_backup(run: Run, rootfs: Path, config: dict[str, Any], logs: Path) -> str:
    """The ops image's own ``backup`` of the run's database and bucket (one object in it),
    then its ``list``: the health answer."""
    run.make_backup_role()
    run.seed_object("images-check/seed.txt", b"backed up by the ops image's check\n")
    env = run.ops_env()
    made = run_job(rootfs, config, ["backup"], env, logs / "ops-backup.log")
    listed = run_job(rootfs, config, ["list"], env, logs / "ops-list.log")
    return backup_answer(made, listed, objects=1)


def stop_all(running: dict[str, Process]) -> None:
    for process in running.values():
        process.stop()


def web_env(run: Run, service_ports: dict[str, int]) -> dict[str, str]:
    """The web server's settings (README, Web app), as compose gives them: dev sign-in against
    the run's local Clerk issuer, the gateway of this run, a loopback origin of its own."""
    return {
        "PORT": str(run.web_port),
        "HOSTNAME": "127.0.0.1",
        "VISIONA_AUTH_MODE": "dev",
        "VISIONA_WEB_URL": f"http://localhost:{run.web_port}",
        "VISIONA_API_URL": run.cfg.gateway_url,
        "VISIONA_GATEWAY_INTERNAL_URL": run.cfg.gateway_url,
        "VISIONA_DEV_ISSUER_URL": run.cfg.clerk_issuer,
    }
