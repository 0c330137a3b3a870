"""A SeaweedFS S3 server for one benchmark run, started the way the stack starts it.

The process is :class:`visiona.emulators.stack.SeaweedFS` (the same flags, ports and
identities file as ``make up`` and the test suite), on free ports in a temporary folder, with
its own bucket; killed and removed on the way out, its log kept on failure.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from minio.error import S3Error

from bench.common import RUN, BenchError
from visiona.emulators.stack import S3Config, SeaweedFS
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
    server = SeaweedFS(state, ACCESS_KEY, SECRET_KEY)
    failed = False
    try:
        try:
            server.start(START_TIMEOUT_S)
        except RuntimeError as exc:
            raise BenchError(str(exc)) from None
        assert server.process is not None
        s3 = server.s3
        storage = Storage(s3.endpoint, s3.access_key, s3.secret_key, f"bench-{RUN}-{label}")
        _make_bucket(storage, server.process)
        try:
            yield S3Server(storage, s3, server.process.pid)
        finally:
            _empty_bucket(storage)
    except BaseException:
        failed = True
        raise
    finally:
        server.stop()  # killed, as LocalStack.down does: SeaweedFS's graceful stop is slow
        if failed:
            print(f"[{label}] SeaweedFS log kept in {server.log_path}")
            shutil.rmtree(state / "s3", ignore_errors=True)
        else:
            shutil.rmtree(state, ignore_errors=True)


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
