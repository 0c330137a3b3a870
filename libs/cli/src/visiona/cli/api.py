"""A small client of the gateway's REST API and its event stream."""

from __future__ import annotations

import json
import mimetypes
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

PHOTO_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".heic": "image/heic",
    ".heif": "image/heif",
}
TERMINAL = ("succeeded", "failed", "canceled")


class ApiError(Exception):
    """A problem+json answer: ``status``, stable ``code`` and a human ``message``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} ({code}, HTTP {status})")
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Event:
    id: str | None
    name: str
    data: dict[str, Any]


def size_text(n: int) -> str:
    """A byte count as a person reads it: ``20 MiB``, ``1.5 KiB``, ``512 bytes``."""
    if n < 1024:
        return f"{n} bytes"
    value = float(n)
    units = ("KiB", "MiB", "GiB", "TiB")
    for unit in units:
        value /= 1024
        if value < 1024 or unit == units[-1]:
            return f"{value:.1f}".removesuffix(".0") + f" {unit}"
    raise AssertionError("unreachable")


def too_large(slot: dict[str, Any], size: int | None) -> dict[str, Any]:
    """The verdict of a file over the slot's limit (never sent, or refused by S3)."""
    limit = int(slot["max_bytes"])
    of = f"the file is {size_text(size)} ({size} bytes); " if size is not None else ""
    return {
        "id": slot["photo_id"],
        "status": "rejected",
        "reasons": ["too_large"],
        "detail": f"{of}photos are at most {size_text(limit)} ({limit} bytes)",
        "max_bytes": limit,
    }


def refused(slot: dict[str, Any], response: httpx.Response) -> dict[str, Any]:
    """The verdict of an upload S3 refused, with S3's own error code and message."""
    code = re.search(r"<Code>([^<]*)</Code>", response.text)
    if code and code.group(1) == "EntityTooLarge":
        return too_large(slot, None)
    message = re.search(r"<Message>([^<]*)</Message>", response.text)
    said = ": ".join(m.group(1) for m in (code, message) if m) or response.text[:200]
    return {
        "id": slot["photo_id"],
        "status": "rejected",
        "reasons": ["upload_refused"],
        "detail": f"S3 answered HTTP {response.status_code}: {said}",
    }


def photo_type(path: Path) -> str | None:
    return PHOTO_TYPES.get(path.suffix.lower()) or (
        mimetypes.guess_type(path.name)[0] if path.suffix.lower() in PHOTO_TYPES else None
    )


class Gateway:
    def __init__(self, base_url: str, token: str | None, timeout_s: float = 60.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout_s)
        self.plain = httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        self.http.close()
        self.plain.close()

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise _error(response)
        return response.json() if response.content else None

    # -- photos --------------------------------------------------------------------------------

    def upload_photos(
        self,
        paths: list[Path],
        *,
        face_policy: str = "require",
        progress: Callable[[Path, dict[str, Any]], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Upload each photo straight to S3 with its presigned POST, then have it validated."""
        verdicts: list[dict[str, Any]] = []
        for start in range(0, len(paths), 30):
            batch = paths[start : start + 30]
            slots = self.call(
                "POST",
                "/v1/photos/uploads",
                json={
                    "photos": [{"content_type": photo_type(p)} for p in batch],
                    "face_policy": face_policy,
                },
            )["uploads"]
            for path, slot in zip(batch, slots, strict=True):
                content_type = photo_type(path) or "application/octet-stream"
                size = path.stat().st_size
                if size > int(slot["max_bytes"]):
                    verdict = too_large(slot, size)  # S3 would refuse it: not sent
                else:
                    with path.open("rb") as handle:
                        posted = self.plain.post(
                            slot["url"],
                            data=slot["fields"],
                            files={"file": (path.name, handle, content_type)},
                        )
                    if posted.status_code >= 300:
                        verdict = refused(slot, posted)
                    else:
                        verdict = self._complete(slot["photo_id"])
                verdicts.append(verdict)
                if progress:
                    progress(path, verdict)
        return verdicts

    def _complete(self, photo_id: str) -> dict[str, Any]:
        """Validate one uploaded photo; a refusal about this photo alone (a 4xx other than
        sign-in) is its verdict, not the end of the batch."""
        try:
            return dict(self.call("POST", f"/v1/photos/{photo_id}/complete"))
        except ApiError as exc:
            if exc.status in (401, 403, 429) or exc.status >= 500:
                raise
            return {
                "id": photo_id,
                "status": "rejected",
                "reasons": [exc.code],
                "detail": exc.message,
            }

    def accepted_photo_ids(self, limit: int = 30) -> list[str]:
        ids: list[str] = []
        cursor = None
        while len(ids) < limit:
            params: dict[str, Any] = {"limit": 100}
            if cursor:
                params["cursor"] = cursor
            page = self.call("GET", "/v1/photos", params=params)
            ids += [
                p["id"]
                for p in page["photos"]
                if p["status"] in ("accepted", "accepted_with_warnings")
            ]
            cursor = page["next_cursor"]
            if not cursor:
                break
        return ids[:limit]

    # -- jobs ----------------------------------------------------------------------------------

    def events(self, last_event_id: str | None = None) -> Iterator[Event]:
        """The signed-in user's events (Server-Sent Events), forever; the caller stops."""
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        with self.http.stream(
            "GET", "/v1/events", headers=headers, timeout=httpx.Timeout(60.0, read=None)
        ) as response:
            if response.status_code >= 400:
                response.read()
                raise _error(response)
            yield from _parse_sse(response.iter_lines())

    def wait_for(
        self,
        path: str,
        *,
        timeout_s: float,
        on_change: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Follow a job resource until it is final: woken by the event stream, confirmed by a
        read of the resource (events are a live view; the resource is the truth)."""
        deadline = time.monotonic() + timeout_s
        cursor: list[str | None] = [None]
        last: dict[str, Any] = self.call("GET", path)
        if on_change:
            on_change(last)
        while last["status"] not in TERMINAL:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{path} is still {last['status']}")
            self._next_event_or_sleep(min(5.0, max(deadline - time.monotonic(), 0.1)), cursor)
            current = self.call("GET", path)
            if on_change and (current["status"], current.get("progress")) != (
                last["status"],
                last.get("progress"),
            ):
                on_change(current)
            last = current
        return last

    def _next_event_or_sleep(self, seconds: float, cursor: list[str | None]) -> None:
        """Wait for the next event of ours (resuming after ``cursor[0]``, so none is missed
        between two waits) or ``seconds``, whichever comes first."""
        headers = {"Accept": "text/event-stream"}
        if cursor[0]:
            headers["Last-Event-ID"] = cursor[0]
        try:
            with self.http.stream(
                "GET", "/v1/events", headers=headers, timeout=httpx.Timeout(seconds, connect=5.0)
            ) as response:
                if response.status_code >= 400:
                    time.sleep(seconds)
                    return
                for event in _parse_sse(response.iter_lines()):
                    cursor[0] = event.id or cursor[0]
                    if event.name not in ("message", "resync"):
                        return
        except httpx.TimeoutException:
            return
        except httpx.HTTPError:
            time.sleep(min(seconds, 1.0))

    def download(self, url: str, dest: Path) -> Path:
        with self.plain.stream("GET", url) as response:
            response.raise_for_status()
            with dest.open("wb") as out:
                for chunk in response.iter_bytes(256 * 1024):
                    out.write(chunk)
        return dest


def _error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    return ApiError(
        response.status_code,
        str(body.get("code") or "http_error"),
        str(body.get("detail") or body.get("title") or response.reason_phrase),
    )


def _parse_sse(lines: Iterator[str]) -> Iterator[Event]:
    event_id: str | None = None
    name = ""
    data: list[str] = []
    for line in lines:
        if line == "":
            if not data and event_id is not None and not name:
                yield Event(event_id, "message", {})
            elif data:
                try:
                    payload = json.loads("\n".join(data))
                except ValueError:
                    payload = {"raw": "\n".join(data)}
                yield Event(
                    event_id, name or "message", payload if isinstance(payload, dict) else {}
                )
            name, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "id":
            event_id = value
        elif field == "event":
            name = value
        elif field == "data":
            data.append(value)
