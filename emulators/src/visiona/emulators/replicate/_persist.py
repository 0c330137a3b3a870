"""The Replicate emulator's state on disk (visiona.emulators._state): models and their
versions, trainings and predictions (a job that was running goes on by the clock after a
restart), output and uploaded files, and the webhook messages still to be delivered."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from visiona.emulators._state import StateFile
from visiona.emulators.replicate._store import (
    OUTPUT_BLOB,
    TERMINAL,
    UPLOAD_BLOB,
    Job,
    Model,
    Store,
    StoredFile,
)
from visiona.emulators.replicate._webhooks import Dispatcher, Message

_SETTLED = frozenset({"outputs", "uploads", "outstanding"})


def _job(job: Job) -> dict[str, Any]:
    return {
        "kind": job.kind,
        "data": job.data,
        "base_url": job.base_url,
        "webhook": job.webhook,
        "events": sorted(job.events),
        "fail_with": job.fail_with,
        "created": job.created,
        "started": job.started,
    }


def documents(store: Store, dispatcher: Dispatcher) -> dict[str, Any]:
    return {
        "models": {
            f"{m.owner}/{m.name}": {
                "owner": m.owner,
                "name": m.name,
                "description": m.description,
                "visibility": m.visibility,
                "hardware": m.hardware,
                "versions": list(m.versions.values()),
                "run_count": m.run_count,
            }
            for m in store.models.values()
        },
        "trainings": {jid: _job(job) for jid, job in store.trainings.items()},
        "predictions": {jid: _job(job) for jid, job in store.predictions.items()},
        "outputs": {
            path: {"content_type": f.content_type, "expires_at": f.expires_at}
            for path, f in store.outputs.items()
        },
        "uploads": {fid: record for fid, (record, _) in store.uploads.items()},
        "outstanding": {
            m.webhook_id: {"url": m.url, "object_id": m.object_id, "event": m.event, "body": m.body}
            for m in dispatcher.outstanding.values()
        },
    }


def settled(kind: str, doc: Any) -> bool:
    if kind in ("trainings", "predictions"):
        return doc["data"]["status"] in TERMINAL
    return kind in _SETTLED


def restore(state: StateFile, store: Store, dispatcher: Dispatcher) -> list[Job]:
    """Put what ``state`` holds back into ``store`` and ``dispatcher``; answer the jobs that
    had not ended (their lifecycles go on once a loop serves)."""
    docs = state.load()
    for doc in docs.get("models", {}).values():
        model = Model(
            doc["owner"], doc["name"], doc["description"], doc["visibility"], doc["hardware"]
        )
        model.versions = {str(v["id"]): v for v in doc["versions"]}
        model.run_count = doc["run_count"]
        store.models[(model.owner, model.name)] = model
    running: list[Job] = []
    for kind, jobs in (("trainings", store.trainings), ("predictions", store.predictions)):
        for jid, doc in docs.get(kind, {}).items():
            job = Job(
                kind=doc["kind"],
                data=doc["data"],
                base_url=doc["base_url"],
                webhook=doc["webhook"],
                events=frozenset(doc["events"]),
                fail_with=doc["fail_with"],
                done=asyncio.Event(),
                created=doc["created"],
                started=doc["started"],
            )
            jobs[jid] = job
            if job.finished:
                job.done.set()
            else:
                running.append(job)
    now = time.time()
    expired = []
    for path, meta in docs.get("outputs", {}).items():
        content = state.blob(OUTPUT_BLOB + path)
        if content is None or (meta["expires_at"] is not None and meta["expires_at"] <= now):
            expired.append(OUTPUT_BLOB + path)
            continue
        store.outputs[path] = StoredFile(content, meta["content_type"], meta["expires_at"])
    state.delete_blobs(expired)
    for fid, record in docs.get("uploads", {}).items():
        content = state.blob(UPLOAD_BLOB + fid)
        if content is not None:
            store.uploads[fid] = (record, content)
    dispatcher.restore(
        [Message(wid, **fields) for wid, fields in docs.get("outstanding", {}).items()]
    )
    store.files = state
    return running


def sync(state: StateFile, store: Store, dispatcher: Dispatcher) -> None:
    state.sync(documents(store, dispatcher), settled)
