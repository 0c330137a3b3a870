"""dataset_assembly: the training dataset zip streamed through the service against a raw S3 copy.

Setup: 30 objects of 8 MiB of random (incompressible) bytes, ``photos/bench/01.jpg`` to
``30.jpg``, in a SeaweedFS S3 started for the run.

Candidate: ``visiona.training.service.dataset.assemble`` of the 30 (named ``01.jpg``... in the zip, as
the training service names them) into ``datasets/bench/x.zip``: a writer thread reads each
object in chunks into a ``zipfile`` (stored, zip64) on a bounded pipe, the SDK uploads the pipe
as a multipart stream. Baseline: the MinIO SDK's server-side ``copy_object`` of the same 30
objects, one after the other (no byte passes through the client).

Each side runs in a child process of its own (``bench.assembly_child``, which imports only the
kit's storage and the dataset module), one per round, and reports the time of the work alone
(imports and client excluded), its RSS just before the work and its peak RSS (``VmHWM``;
``ru_maxrss`` beside it, which on Linux also counts the spawning parent's peak, see
``bench.assembly_child``).
ratio = raw copy time ÷ assembly time (medians over rounds; the side that goes first
alternates): higher is better, no goal. The goal is memory: the assembly process's peak RSS
(the largest over rounds) <= 150 MiB. The first round's zip is downloaded and checked (30
members, names, sizes, CRCs, bytes against the originals); every round's zip and copies are
deleted after it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import BenchError, Measurement, Result, goal_met, interleaved, load_average
from bench.s3 import S3Server, remove, seaweedfs

NAME = "dataset_assembly"
RSS_GOAL = "<= 150"  # MiB, the assembly process's peak
MEMBERS = 30
MEMBER_BYTES = 8 * 1024 * 1024
PHOTO_PREFIX = "photos/bench/"
DATASET_KEY = "datasets/bench/x.zip"
COPY_PREFIX = "copies/bench/"
CHILD_TIMEOUT_S = 120.0
ROOT = Path(__file__).resolve().parents[1]
MIB = 1024.0  # ru_maxrss and VmRSS are in KiB


@dataclass
class AssemblyResult(Result):
    """A :class:`Result` whose goal is the assembly's peak RSS, not the ratio (no goal)."""

    peak_rss_mb: float = 0.0

    @property
    def met(self) -> bool:
        return goal_met(self.peak_rss_mb, RSS_GOAL)

    def line(self) -> str:
        # The base class names the ratio as the missed goal; here the goal is memory.
        return super().line().replace(f"ratio {self.goal}", self.goal)


def _child(server: S3Server, mode: str, members: list[tuple[str, str]]) -> dict[str, Any]:
    spec = {
        "mode": mode,
        "endpoint": server.config.endpoint,
        "access_key": server.config.access_key,
        "secret_key": server.config.secret_key,
        "bucket": server.storage.bucket,
        "members": members,
        "key": DATASET_KEY,
        "copy_prefix": COPY_PREFIX,
    }
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bench.assembly_child", json.dumps(spec)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"the {mode} child did not finish within {CHILD_TIMEOUT_S} s") from exc
    if done.returncode != 0:
        raise BenchError(f"the {mode} child exited with {done.returncode}:\n{done.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def _setup(server: S3Server) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """The 30 photos in S3; (name in the zip, key) each, and each name's SHA-256."""
    members: list[tuple[str, str]] = []
    digests: dict[str, str] = {}
    client, bucket = server.storage.client, server.storage.bucket
    for n in range(1, MEMBERS + 1):
        name = f"{n:02d}.jpg"
        data = os.urandom(MEMBER_BYTES)
        key = PHOTO_PREFIX + name
        client.put_object(bucket, key, io.BytesIO(data), len(data), content_type="image/jpeg")
        members.append((name, key))
        digests[name] = hashlib.sha256(data).hexdigest()
    return members, digests


def _verify_zip(server: S3Server, digests: dict[str, str], reported: int) -> dict[str, Any]:
    """Download the dataset and check it member by member: a valid zip of the 30 photos."""
    client, bucket = server.storage.client, server.storage.bucket
    with tempfile.TemporaryDirectory(prefix="visiona-bench-zip-") as folder:
        path = Path(folder) / "x.zip"
        client.fget_object(bucket, DATASET_KEY, str(path))
        size = path.stat().st_size
        if size != reported:
            raise BenchError(f"the dataset is {size} bytes in S3; assemble wrote {reported}")
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            names = [i.filename for i in infos]
            if names != list(digests):
                raise BenchError(f"the zip holds {names}, expected {list(digests)}")
            for info in infos:
                if info.file_size != MEMBER_BYTES or info.compress_type != zipfile.ZIP_STORED:
                    raise BenchError(
                        f"{info.filename}: {info.file_size} bytes, compression "
                        f"{info.compress_type}; expected {MEMBER_BYTES} stored"
                    )
                digest = hashlib.sha256()
                with zf.open(info) as member:  # checks the CRC at the end
                    while chunk := member.read(1024 * 1024):
                        digest.update(chunk)
                if digest.hexdigest() != digests[info.filename]:
                    raise BenchError(f"{info.filename}: the bytes differ from the original")
    return {"members": len(infos), "zip_bytes": size, "crc_and_bytes_ok": True}


def _check_copies(server: S3Server, members: list[tuple[str, str]]) -> None:
    for name, _ in members:
        stat = server.storage.client.stat_object(server.storage.bucket, COPY_PREFIX + name)
        if stat.size != MEMBER_BYTES:
            raise BenchError(f"the copy of {name} is {stat.size} bytes")


def _measure(server: S3Server, rounds: int) -> Result:
    load_at_start = load_average()
    members, digests = _setup(server)
    reports: dict[str, list[dict[str, Any]]] = {"candidate": [], "baseline": []}
    verified: dict[str, Any] = {}
    for i, candidate_first in interleaved(rounds):
        order = ["candidate", "baseline"] if candidate_first else ["baseline", "candidate"]
        for side in order:
            report = _child(server, "assemble" if side == "candidate" else "copy", members)
            reports[side].append(report)
        zip_bytes = reports["candidate"][-1]["output"]
        if i == 0:
            verified = _verify_zip(server, digests, zip_bytes)
            _check_copies(server, members)
        else:
            stat = server.storage.client.stat_object(server.storage.bucket, DATASET_KEY)
            if stat.size != zip_bytes:
                raise BenchError(f"round {i}: the dataset is {stat.size} bytes, not {zip_bytes}")
        remove(server.storage, [DATASET_KEY, *(COPY_PREFIX + name for name, _ in members)])

    def seconds(side: str) -> list[float]:
        return [float(r["seconds"]) for r in reports[side]]

    def mib(side: str, field: str) -> list[float]:
        return [round(r[field] / MIB, 1) for r in reports[side]]

    cand_s, base_s = seconds("candidate"), seconds("baseline")
    candidate = Measurement.median([Measurement.of([s], s) for s in cand_s])
    baseline = Measurement.median([Measurement.of([s], s) for s in base_s])
    ratio = baseline.p50_ms / candidate.p50_ms
    peaks = mib("candidate", "peak_rss_kb")
    befores = mib("candidate", "rss_before_kb")
    deltas = [round(p - b, 1) for p, b in zip(peaks, befores, strict=True)]
    parent_peak = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / MIB, 1)
    peak = max(peaks)
    total_mb = MEMBERS * MEMBER_BYTES / 1e6
    return AssemblyResult(
        name=NAME,
        ratio=ratio,
        goal=f"peak_rss_mb {RSS_GOAL}",
        candidate=candidate,
        baseline=baseline,
        rounds=rounds,
        peak_rss_mb=peak,
        extra={
            "peak_rss_mb": peak,
            "rss_goal": f"peak_rss_mb {RSS_GOAL}",
            "rss_goal_met": goal_met(peak, RSS_GOAL),
            "rss_before_mb": statistics.median(befores),
            "peak_rss_delta_mb": max(deltas),
            "peak_rss_mb_by_round": peaks,
            "peak_rss_before_mb": max(mib("candidate", "peak_rss_before_kb")),
            "ru_maxrss_mb": max(mib("candidate", "ru_maxrss_kb")),
            "parent_ru_maxrss_mb": parent_peak,
            "peak_rss_delta_mb_by_round": deltas,
            "copy_rss_before_mb": statistics.median(mib("baseline", "rss_before_kb")),
            "copy_peak_rss_mb": max(mib("baseline", "peak_rss_kb")),
            "copy_ru_maxrss_mb": max(mib("baseline", "ru_maxrss_kb")),
            "assembly_s": round(statistics.median(cand_s), 3),
            "copy_s": round(statistics.median(base_s), 3),
            "assembly_mb_per_s": round(total_mb / statistics.median(cand_s), 1),
            "copy_mb_per_s": round(total_mb / statistics.median(base_s), 1),
            "assembly_s_by_round": [round(s, 3) for s in cand_s],
            "copy_s_by_round": [round(s, 3) for s in base_s],
            "ratio_by_round": [round(b / c, 3) for b, c in zip(base_s, cand_s, strict=True)],
            "members": MEMBERS,
            "member_bytes": MEMBER_BYTES,
            "zip_bytes": reports["candidate"][0]["output"],
            "verified_round_0": verified,
            "child_modules_loaded": reports["candidate"][0]["modules"],
            "load_avg_1m_at_start": load_at_start,
            "notes": (
                "Each side runs in a fresh child process per round (bench.assembly_child: the "
                "kit's Storage and visiona.training.service.dataset imported, nothing else of the "
                "platform); seconds = the work alone. RSS in MiB: rss_before = VmRSS after "
                "imports and client, just before the work; peak = VmHWM at the end (the "
                "process's own high-water mark since exec); the goal is checked on the largest "
                "peak over rounds. ru_maxrss_mb is max(own peak, the spawning parent's peak): "
                "Linux carries the parent's high-water mark into it at exec "
                "(parent_ru_maxrss_mb), so it is reported, not used. "
                "The copy is server-side (CopyObject): SeaweedFS moves the bytes, the client "
                "none. Client and SeaweedFS share the machine's 2 cores."
            ),
        },
        headline=(
            "peak_rss_mb",
            "rss_before_mb",
            "peak_rss_delta_mb",
            "rss_goal_met",
            "assembly_s",
            "copy_s",
            "assembly_mb_per_s",
        ),
    )


def run(rounds: int) -> Result:
    with seaweedfs("dataset") as server:
        return _measure(server, rounds)
