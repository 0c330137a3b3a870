"""S3 objects streamed into one zip in S3 (training datasets, account exports).

Nothing holds the archive in memory. A writer thread reads each member in chunks and writes
it into a ``zipfile`` opened on a bounded in-memory channel; the S3 client reads the channel as
a stream of unknown length and sends it as a multipart upload. Memory stays at a few chunks
plus the upload's part buffer, whatever the number and size of the members.

A failure on either side fails both: a member that cannot be read aborts the upload (no
truncated zip is ever stored), and a failed upload stops the writer.
"""

from __future__ import annotations

import asyncio
import queue
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from visiona.kit.storage import CHUNK, Storage

# Chunks in flight between the zip writer and the uploader.
_CHANNEL_DEPTH = 4
# S3 multipart part size (the minimum is 5 MiB); one part is buffered at a time.
PART_SIZE = 8 * 1024 * 1024
# A fixed timestamp makes the same members give the same zip.
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)
_DEFLATE = (".json", ".txt", ".csv")


class ZipAssemblyError(Exception):
    """The archive could not be assembled (a member is missing or unreadable, or the upload
    failed); nothing was stored."""


@dataclass(frozen=True)
class Archive:
    key: str
    size: int
    members: int


class _Aborted(Exception):
    pass


class _Channel:
    """A one-writer, one-reader byte pipe with a bounded buffer and failure on both ends."""

    def __init__(self) -> None:
        self._q: queue.Queue[bytes | BaseException | None] = queue.Queue(_CHANNEL_DEPTH)
        self._buffer = bytearray()
        self._eof = False
        self.reader_gone = False
        self.written = 0

    # Writer side (zipfile): write/flush, and no tell() so zipfile streams with descriptors.
    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self.reader_gone:
            raise _Aborted("the upload stopped")
        chunk = bytes(data)
        if chunk:
            self._put(chunk)
            self.written += len(chunk)
        return len(chunk)

    def flush(self) -> None:
        pass

    def close(self, error: BaseException | None = None) -> None:
        self._put(error)

    def _put(self, item: bytes | BaseException | None) -> None:
        while True:
            if self.reader_gone and item is not None and not isinstance(item, BaseException):
                raise _Aborted("the upload stopped")
            try:
                self._q.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    # Reader side (the S3 client).
    def read(self, size: int = -1) -> bytes:
        while not self._eof and (size < 0 or len(self._buffer) < size):
            item = self._q.get()
            if item is None:
                self._eof = True
            elif isinstance(item, BaseException):
                self._eof = True
                raise ZipAssemblyError(str(item)) from item
            else:
                self._buffer += item
        if size < 0 or size >= len(self._buffer):
            out = bytes(self._buffer)
            self._buffer.clear()
        else:
            with memoryview(self._buffer) as view:
                out = bytes(view[:size])
            del self._buffer[:size]
        return out

    def abandon(self) -> None:
        self.reader_gone = True
        # Unblock a writer waiting on a full queue.
        while True:
            try:
                self._q.get_nowait()
            except queue.Empty:
                return


def _write_zip(storage: Storage, members: Sequence[tuple[str, str]], channel: _Channel) -> None:
    try:
        with zipfile.ZipFile(channel, mode="w", compression=zipfile.ZIP_STORED) as zf:  # type: ignore[arg-type]
            for arcname, key in members:
                info = zipfile.ZipInfo(arcname, date_time=_ZIP_TIME)
                # Photos and images are compressed already; records (JSON) are not.
                info.compress_type = (
                    zipfile.ZIP_DEFLATED if arcname.endswith(_DEFLATE) else zipfile.ZIP_STORED
                )
                try:
                    response: Any = storage.client.get_object(storage.bucket, key)
                except Exception as exc:
                    raise ZipAssemblyError(f"{arcname} is not readable") from exc
                try:
                    with zf.open(info, mode="w", force_zip64=True) as out:
                        while chunk := response.read(CHUNK):
                            out.write(chunk)
                finally:
                    response.close()
                    response.release_conn()
    except _Aborted:
        return
    except BaseException as exc:
        channel.close(exc)
        raise
    channel.close()


def _upload(storage: Storage, key: str, channel: _Channel) -> None:
    try:
        storage.client.put_object(
            storage.bucket,
            key,
            channel,  # type: ignore[arg-type]
            -1,
            content_type="application/zip",
            part_size=PART_SIZE,
            num_parallel_uploads=1,
            sse=storage.sse,
        )
    finally:
        channel.abandon()


async def assemble(storage: Storage, members: Sequence[tuple[str, str]], key: str) -> Archive:
    """Zip ``members`` (``(name in the zip, S3 key)``) into the object ``key``."""
    if not members:
        raise ZipAssemblyError("nothing to zip")
    channel = _Channel()
    writer = asyncio.to_thread(_write_zip, storage, members, channel)
    uploader = asyncio.to_thread(_upload, storage, key, channel)
    results = await asyncio.gather(writer, uploader, return_exceptions=True)
    for result in results:
        if isinstance(result, ZipAssemblyError):
            raise result
    for result in results:
        if isinstance(result, BaseException):
            raise ZipAssemblyError(f"archive upload failed: {result}") from result
    return Archive(key=key, size=channel.written, members=len(members))
