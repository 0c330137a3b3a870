"""One side of ``dataset_assembly`` in a process of its own, so its peak RSS is its own.

``python -m bench.assembly_child '<json>'`` with ``mode`` ``assemble`` (the training service's
``visiona.training.service.dataset.assemble`` of ``members`` into ``key``) or ``copy`` (the MinIO SDK's
server-side ``copy_object`` of each member to ``copy_prefix`` + its name, one after the other).
Prints one JSON line: the seconds the work took, the RSS before it started (imports done,
client made) and the peak RSS of the process.

The peak is ``VmHWM``, this address space's high-water mark since ``exec``. ``ru_maxrss`` is
reported too but is not the child's own: Linux folds the spawning process's high-water mark
into it at ``exec`` (``setmax_mm_hiwater_rss`` of the old address space, which a vfork'd child
shares with its parent), so a child spawned by a 300 MiB parent reports at least 300 MiB.

Imports only what assembly needs (the kit's storage and the training dataset module): nothing
of ``bench.common`` (aio-pika, psycopg, the emulators) is loaded here.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

from minio.commonconfig import CopySource

from visiona.kit.storage import Storage
from visiona.training.service.dataset import assemble


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def rss_kb() -> int:
    """The current resident set (``VmRSS``, KiB; Linux)."""
    return _status_kb("VmRSS")


def peak_rss_kb() -> int:
    """This process's peak resident set since ``exec`` (``VmHWM``, KiB; Linux)."""
    return _status_kb("VmHWM")


def ru_maxrss_kb() -> int:
    """``ru_maxrss`` (KiB on Linux): the peak, but at least the spawning parent's peak."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def _assemble(storage: Storage, members: list[tuple[str, str]], key: str) -> int:
    dataset = await assemble(storage, members, key)
    if dataset.members != len(members):
        raise RuntimeError(f"assemble reported {dataset.members} members of {len(members)}")
    return dataset.size


def _copy(storage: Storage, members: list[tuple[str, str]], prefix: str) -> int:
    copied = 0
    for name, key in members:
        storage.client.copy_object(
            storage.bucket, f"{prefix}{name}", CopySource(storage.bucket, key)
        )
        copied += 1
    return copied


def main(spec: dict[str, Any]) -> dict[str, Any]:
    storage = Storage(spec["endpoint"], spec["access_key"], spec["secret_key"], spec["bucket"])
    members = [(str(name), str(key)) for name, key in spec["members"]]
    before, peak_before = rss_kb(), peak_rss_kb()
    started = time.perf_counter()
    if spec["mode"] == "assemble":
        output = asyncio.run(_assemble(storage, members, spec["key"]))
    elif spec["mode"] == "copy":
        output = _copy(storage, members, spec["copy_prefix"])
    else:
        raise ValueError(f"unknown mode {spec['mode']!r}")
    seconds = time.perf_counter() - started
    return {
        "mode": spec["mode"],
        "seconds": seconds,
        "output": output,  # zip bytes, or objects copied
        "rss_before_kb": before,
        "peak_rss_before_kb": peak_before,
        "rss_after_kb": rss_kb(),
        "peak_rss_kb": peak_rss_kb(),
        "ru_maxrss_kb": ru_maxrss_kb(),
        "modules": len(sys.modules),
    }


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))), flush=True)
