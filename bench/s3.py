"""A SeaweedFS S3 server for one benchmark run, started the way the stack starts it.

The process is built by :func:`visiona.emulators.stack.weed_command` (the same flags, ports
and identities file as ``make up`` and the test suite), on free ports in a temporary folder,
with its own bucket; killed and removed on the way out, its log kept on failure.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from minio.error import S3Error

from bench.common import ADMIN_URL, AMQP_URL, RUN, BenchError
from visiona.emulators.stack import (
    WEED_PORTS,
    S3Config,
    StackConfig,
    free_port,
    wait_for_port,
    weed_command,
)
from visiona.kit.storage import Storage

ACCESS_KEY = "bench"
SECRET_KEY = "bench-secret"
START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class S3Server:
    storage: Storage  # on the run's bucket
    config: S3Config
    pid: int  # the weed process (master, volume, filer and S3 in one)


@contextlib.contextmanager
def seaweedfs(label: str) -> Iterator[S3Server]:
    """SeaweedFS with S3 on a free port and an empty bucket ``bench-<run>-<label>``, with a
    :class:`Storage` on it. Every object left in the bucket is deleted afterwards."""
    state = Path(tempfile.mkdtemp(prefix=f"visiona-bench-{label}-"))
    ports = {name: free_port() for name in ("s3", *WEED_PORTS)}
    s3 = S3Config(endpoint=f"127.0.0.1:{ports['s3']}", access_key=ACCESS_KEY, secret_key=SECRET_KEY)
    # Only the S3 part of the stack's configuration is used; the rest is never started.
    cfg = StackConfig(
        admin_url=ADMIN_URL,
        database=f"visiona_bench_{RUN}_{label}",
        amqp_url=AMQP_URL,
        ports=ports,
        state_dir=state,
        s3=s3,
    )
    logs = state / "logs"
    logs.mkdir()
    log = (logs / "s3.log").open("ab")
    argv = weed_command(cfg)
    # SeaweedFS 4.x also opens a Lance Namespace listener on the fixed port 9101, which a
    # second weed on the machine (``make up``, a test run) already holds: off, as Iceberg is.
    if not any(arg.startswith("-s3.port.lance") for arg in argv):
        argv.append("-s3.port.lance=0")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    failed = False
    try:
        _wait_listening(process, ports["s3"], logs / "s3.log")
        storage = Storage(s3.endpoint, s3.access_key, s3.secret_key, f"bench-{RUN}-{label}")
        _make_bucket(storage, process)
        try:
            yield S3Server(storage, s3, process.pid)
        finally:
            _empty_bucket(storage)
    except BaseException:
        failed = True
        raise
    finally:
        process.kill()  # as LocalStack.down does: SeaweedFS's graceful stop is slow
        process.wait()
        _remove_sockets(ports.values())
        if failed:
            print(f"[{label}] SeaweedFS log kept in {logs / 's3.log'}")
            shutil.rmtree(state / "s3", ignore_errors=True)
        else:
            shutil.rmtree(state, ignore_errors=True)


def _wait_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not wait_for_port(port, 0.5):
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise BenchError(f"SeaweedFS exited with {process.returncode}:\n{tail}")
        if time.monotonic() > deadline:
            raise BenchError(f"SeaweedFS did not listen on port {port} within {START_TIMEOUT_S} s")


def _remove_sockets(ports: Iterable[int]) -> None:
    """weed also listens on ``/tmp/seaweedfs-<part>[-grpc]-<port>.sock`` per port and,
    killed, leaves the files behind: remove those of this run's ports."""
    for port in ports:
        for socket in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
            socket.unlink(missing_ok=True)


def _make_bucket(storage: Storage, process: subprocess.Popen[bytes]) -> None:
    """The S3 port opens before the filer behind it answers: retry until the bucket exists."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise BenchError(f"SeaweedFS exited with {process.returncode}")
        try:
            if not storage.client.bucket_exists(storage.bucket):
                storage.client.make_bucket(storage.bucket)
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise BenchError(f"SeaweedFS did not create a bucket: {exc}") from exc
            time.sleep(0.2)


def _empty_bucket(storage: Storage) -> None:
    client = storage.client
    with contextlib.suppress(S3Error):
        for obj in client.list_objects(storage.bucket, recursive=True):
            client.remove_object(storage.bucket, obj.object_name)
        client.remove_bucket(storage.bucket)


def remove(storage: Storage, keys: list[str]) -> None:
    """Delete ``keys`` (objects a round wrote), so the server's volumes do not fill up."""
    for key in keys:
        storage.client.remove_object(storage.bucket, key)
