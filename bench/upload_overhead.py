"""upload_overhead: a photo uploaded by presigned POST against a raw SDK put of the same bytes.

Candidate: what a Visiona client does with an upload slot. The policy is made the way the
training service makes it (``Storage.presigned_post(key, max_bytes=20 MiB,
content_type="image/jpeg")``: key, type and size range pinned), then the photo goes up as an
HTTP multipart form POST (the policy's fields plus ``file``) from an httpx ``Client``
keep-alive pool. Timed: making the policy + the POST until S3 answers.

Baseline: the MinIO SDK's ``put_object`` of the same bytes, same content type, on the same
``Storage.client`` (its urllib3 keep-alive pool): one signed PUT at 100 KB, at 20 MiB the SDK's
own choice, a multipart upload of four 5 MiB parts sent by three threads.

Both against one SeaweedFS S3 started for the run. Two sizes: 20 MiB (the service's
``upload_max_bytes``; the ratio and its goal) and 100 KiB. Per round and size, ``n`` pairs of
uploads, candidate and baseline back to back with the same random (incompressible) bytes and
distinct keys, the pair's order alternating, so the machine's noise hits both sides; each
side's time per upload is measured alone. ratio = candidate p50 ÷ baseline p50 at 20 MiB
(medians over rounds); lower is better. Every object is checked (size; in the first round also
the bytes) and deleted after its round.
"""

from __future__ import annotations

import hashlib
import io
import os
import statistics
import time
import uuid
from dataclasses import dataclass

import httpx

from bench.common import RUN, BenchError, Measurement, Result, goal_met, interleaved, load_average
from bench.s3 import S3Server, remove, seaweedfs
from bench.webhook_ingest_overhead import cpu_seconds
from visiona.kit.storage import Storage

NAME = "upload_overhead"
CONTENT_TYPE = "image/jpeg"
# TrainingSettings.upload_max_bytes: the size limit every upload policy carries.
UPLOAD_MAX_BYTES = 20 * 1024 * 1024
TIMEOUT_S = 60.0
WARMUP = 2  # pairs per size before the first round, not measured


@dataclass(frozen=True)
class Size:
    label: str
    size: int
    per_round: int  # upload pairs per round
    goal: str


LARGE = Size("20mb", 20 * 1024 * 1024, 5, "<= 1.10")
SMALL = Size("100kb", 100 * 1024, 50, "<= 1.5")
SIZES = (LARGE, SMALL)


class Uploader:
    def __init__(self, server: S3Server) -> None:
        self.storage: Storage = server.storage
        self.server_pid = server.pid
        self.http = httpx.Client(timeout=TIMEOUT_S)
        self.presign_s: list[float] = []
        # (side, size label) → [uploads, client CPU s, server CPU s], measured rounds only
        self.cpu: dict[tuple[str, str], list[float]] = {}

    def timed(self, side: str, size: str, key: str, data: bytes) -> float:
        """One upload by ``side``; seconds. CPU of this process (the SDK's threads included)
        and of SeaweedFS is added up per side and size."""
        upload = self.candidate if side == "candidate" else self.baseline
        server, client = cpu_seconds(self.server_pid), time.process_time()
        elapsed = upload(key, data)
        client, server = time.process_time() - client, cpu_seconds(self.server_pid) - server
        totals = self.cpu.setdefault((side, size), [0, 0.0, 0.0])
        totals[0] += 1
        totals[1] += client
        totals[2] += server
        return elapsed

    def cpu_ms_per_upload(self, side: str, size: str) -> dict[str, float]:
        count, client, server = self.cpu[(side, size)]
        return {"client": round(client * 1000 / count, 2), "s3": round(server * 1000 / count, 2)}

    def candidate(self, key: str, data: bytes) -> float:
        """Policy + form POST, as a client does; seconds."""
        started = time.perf_counter()
        post = self.storage.presigned_post(
            key, max_bytes=UPLOAD_MAX_BYTES, content_type=CONTENT_TYPE
        )
        presigned = time.perf_counter()
        response = self.http.post(
            post.url, data=post.fields, files={"file": ("photo.jpg", data, CONTENT_TYPE)}
        )
        elapsed = time.perf_counter() - started
        if not response.is_success:
            raise BenchError(f"presigned POST of {key}: {response.status_code} {response.text}")
        self.presign_s.append(presigned - started)
        return elapsed

    def baseline(self, key: str, data: bytes) -> float:
        """The SDK's put of the same bytes; seconds."""
        started = time.perf_counter()
        self.storage.client.put_object(
            self.storage.bucket, key, io.BytesIO(data), len(data), content_type=CONTENT_TYPE
        )
        return time.perf_counter() - started

    def check(self, key: str, data: bytes, *, content: bool) -> None:
        """The object is there, with the size (and, if ``content``, the bytes) sent."""
        client, bucket = self.storage.client, self.storage.bucket
        stat = client.stat_object(bucket, key)
        if stat.size != len(data) or stat.content_type != CONTENT_TYPE:
            raise BenchError(
                f"{key}: stored {stat.size} bytes as {stat.content_type}, "
                f"sent {len(data)} as {CONTENT_TYPE}"
            )
        if content:
            response = client.get_object(bucket, key)
            try:
                stored = hashlib.sha256(response.read()).hexdigest()
            finally:
                response.close()
                response.release_conn()
            if stored != hashlib.sha256(data).hexdigest():
                raise BenchError(f"{key}: the stored bytes differ from the bytes sent")

    def close(self) -> None:
        self.http.close()


def _pairs(
    up: Uploader, size: Size, count: int, tag: str, *, candidate_first: bool, verify: bool
) -> tuple[list[float], list[float]]:
    """``count`` upload pairs of fresh random bytes; each side's seconds per upload."""
    times: dict[str, list[float]] = {"candidate": [], "baseline": []}
    written: list[str] = []
    prefix = f"photos/bench-{RUN}/{size.label}/{tag}"
    for j in range(count):
        data = os.urandom(size.size)
        keys = {side: f"{prefix}/{side}-{j}-{uuid.uuid4().hex}.jpg" for side in times}
        first = "candidate" if candidate_first == (j % 2 == 0) else "baseline"
        for side in (first, "baseline" if first == "candidate" else "candidate"):
            times[side].append(up.timed(side, size.label, keys[side], data))
        for key in keys.values():
            up.check(key, data, content=verify and j == 0)
        written += keys.values()
    remove(up.storage, written)
    return times["candidate"], times["baseline"]


def _measure(server: S3Server, rounds: int) -> Result:
    up = Uploader(server)
    load_at_start = load_average()
    measured: dict[str, dict[str, list[Measurement]]] = {
        s.label: {"candidate": [], "baseline": []} for s in SIZES
    }
    pooled: dict[str, dict[str, list[float]]] = {
        s.label: {"candidate": [], "baseline": []} for s in SIZES
    }
    try:
        for size in SIZES:  # connections, the server's volumes, both code paths
            _pairs(up, size, WARMUP, "warmup", candidate_first=True, verify=True)
        up.presign_s.clear()
        up.cpu.clear()
        for i, candidate_first in interleaved(rounds):
            for size in SIZES:
                cand, base = _pairs(
                    up,
                    size,
                    size.per_round,
                    f"r{i}",
                    candidate_first=candidate_first,
                    verify=i == 0,
                )
                # rps = uploads ÷ the time this side spent uploading (the other side's excluded)
                measured[size.label]["candidate"].append(Measurement.of(cand, sum(cand)))
                measured[size.label]["baseline"].append(Measurement.of(base, sum(base)))
                pooled[size.label]["candidate"] += cand
                pooled[size.label]["baseline"] += base
    finally:
        up.close()

    extra: dict[str, object] = {}
    ratios: dict[str, float] = {}
    medians: dict[str, tuple[Measurement, Measurement]] = {}
    for size in SIZES:
        sides = measured[size.label]
        med_c = Measurement.median(sides["candidate"])
        med_b = Measurement.median(sides["baseline"])
        medians[size.label] = (med_c, med_b)
        ratio = med_c.p50_ms / med_b.p50_ms
        ratios[size.label] = ratio
        by_round = [
            c.p50_ms / b.p50_ms for c, b in zip(sides["candidate"], sides["baseline"], strict=True)
        ]
        mb = size.size / 1e6
        pooled_ratio = statistics.median(pooled[size.label]["candidate"]) / statistics.median(
            pooled[size.label]["baseline"]
        )
        extra |= {
            f"ratio_{size.label}": round(ratio, 3),
            f"goal_{size.label}": size.goal,
            f"goal_{size.label}_met": goal_met(ratio, size.goal),
            f"candidate_{size.label}_p50_ms": round(med_c.p50_ms, 3),
            f"candidate_{size.label}_p99_ms": round(med_c.p99_ms, 3),
            f"baseline_{size.label}_p50_ms": round(med_b.p50_ms, 3),
            f"baseline_{size.label}_p99_ms": round(med_b.p99_ms, 3),
            f"added_{size.label}_p50_ms": round(med_c.p50_ms - med_b.p50_ms, 3),
            f"candidate_{size.label}_mb_per_s": round(mb / (med_c.p50_ms / 1000), 1),
            f"baseline_{size.label}_mb_per_s": round(mb / (med_b.p50_ms / 1000), 1),
            f"ratio_{size.label}_by_round": [round(r, 3) for r in by_round],
            f"ratio_{size.label}_spread": round(statistics.pstdev(by_round), 3),
            f"ratio_{size.label}_pooled_p50": round(pooled_ratio, 3),
            f"candidate_{size.label}_cpu_ms_per_upload": up.cpu_ms_per_upload(
                "candidate", size.label
            ),
            f"baseline_{size.label}_cpu_ms_per_upload": up.cpu_ms_per_upload(
                "baseline", size.label
            ),
            f"uploads_{size.label}_per_side_per_round": size.per_round,
            f"bytes_{size.label}": size.size,
        }
    extra |= {
        "presign_p50_ms": round(statistics.median(up.presign_s) * 1000, 3),
        "load_avg_1m_at_start": load_at_start,
        "notes": (
            "Times are per upload, from the start of the call to S3's answer. Candidate = "
            "Storage.presigned_post (local signing, presign_p50_ms) + a multipart form POST "
            "from one httpx.Client keep-alive pool; baseline = Minio.put_object on the "
            "Storage's own client (one PUT at 100 KiB; at 20 MiB the SDK's default multipart "
            "upload, 4 parts of 5 MiB on 3 threads). Same bytes per pair, random, distinct "
            "keys. ratio_*_pooled_p50 = median of every measured upload, not of round "
            "medians. cpu_ms_per_upload: this process (client, the SDK's threads included) "
            "and the weed process (s3), measured around each upload. Client and SeaweedFS "
            "share the machine's 2 cores."
        ),
    }
    large_cand, large_base = medians[LARGE.label]
    return Result(
        name=NAME,
        ratio=ratios[LARGE.label],
        goal=LARGE.goal,
        candidate=large_cand,
        baseline=large_base,
        rounds=rounds,
        extra=extra,
        headline=(
            "candidate_20mb_p50_ms",
            "baseline_20mb_p50_ms",
            "ratio_100kb",
            "candidate_100kb_p50_ms",
            "baseline_100kb_p50_ms",
        ),
        other_goals={f"ratio_100kb {SMALL.goal}": goal_met(ratios[SMALL.label], SMALL.goal)},
    )


def run(rounds: int) -> Result:
    with seaweedfs("upload") as server:
        return _measure(server, rounds)
