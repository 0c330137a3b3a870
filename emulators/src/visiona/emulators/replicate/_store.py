"""The emulator's state: models and versions, jobs, uploaded and output files (kept on disk
by visiona.emulators.replicate._persist when a state folder is configured)."""

from __future__ import annotations

import asyncio
import secrets
import string
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from visiona.emulators._state import StateFile
from visiona.emulators.replicate._errors import conflict, invalid, not_found

JSON = dict[str, Any]
JobKind = Literal["training", "prediction"]
TERMINAL = frozenset({"succeeded", "failed", "canceled"})
EVENTS = frozenset({"start", "output", "logs", "completed"})
COG_VERSION = "0.9.6"
# Blob keys of output files and uploaded files.
OUTPUT_BLOB = "outputs/"
UPLOAD_BLOB = "uploads/"

_ID_ALPHABET = string.ascii_lowercase + string.digits


def now_iso(ts: float | None = None) -> str:
    moment = datetime.fromtimestamp(time.time() if ts is None else ts, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def job_id() -> str:
    """An id in Replicate's shape (26 lowercase alphanumerics)."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(26))


def version_id() -> str:
    return secrets.token_hex(32)


def page(results: list[JSON]) -> JSON:
    return {"next": None, "previous": None, "results": results}


def _openapi_schema() -> JSON:
    return {
        "openapi": "3.0.2",
        "info": {"title": "Cog", "version": "0.1.0"},
        "paths": {},
        "components": {
            "schemas": {
                "Input": {"type": "object", "properties": {"prompt": {"type": "string"}}},
                "Output": {"type": "array", "items": {"type": "string", "format": "uri"}},
            }
        },
    }


@dataclass
class Model:
    owner: str
    name: str
    description: str | None
    visibility: str
    hardware: str
    # Newest last: insertion order is creation order.
    versions: dict[str, JSON] = field(default_factory=dict)
    run_count: int = 0

    def as_json(self) -> JSON:
        latest = next(reversed(self.versions.values()), None)
        return {
            "url": f"https://replicate.com/{self.owner}/{self.name}",
            "owner": self.owner,
            "name": self.name,
            "description": self.description,
            "visibility": self.visibility,
            "github_url": None,
            "paper_url": None,
            "license_url": None,
            "run_count": self.run_count,
            "cover_image_url": None,
            "default_example": None,
            "latest_version": latest,
        }

    def add_version(self, vid: str | None = None) -> JSON:
        version = {
            "id": vid or version_id(),
            "created_at": now_iso(),
            "cog_version": COG_VERSION,
            "openapi_schema": _openapi_schema(),
        }
        self.versions[str(version["id"])] = version
        return version


@dataclass
class Job:
    """A prediction or training: its public object plus what the lifecycle needs."""

    kind: JobKind
    data: JSON
    base_url: str
    webhook: str | None
    events: frozenset[str]
    fail_with: str | None
    done: asyncio.Event
    task: asyncio.Task[None] | None = None
    last_logs_event: float = 0.0
    created: float = field(default_factory=time.time)
    # When it began processing (``data["started_at"]`` as a timestamp).
    started: float | None = None

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def finished(self) -> bool:
        return self.data["status"] in TERMINAL


@dataclass(frozen=True)
class StoredFile:
    content: bytes
    content_type: str
    expires_at: float | None


@dataclass
class Store:
    models: dict[tuple[str, str], Model] = field(default_factory=dict)
    trainings: dict[str, Job] = field(default_factory=dict)
    predictions: dict[str, Job] = field(default_factory=dict)
    # Output and weights files by path under ``/files/``.
    outputs: dict[str, StoredFile] = field(default_factory=dict)
    uploads: dict[str, tuple[JSON, bytes]] = field(default_factory=dict)
    # Where file contents are kept across restarts (nowhere by default).
    files: StateFile = field(default_factory=lambda: StateFile(None))

    def jobs(self, kind: JobKind) -> dict[str, Job]:
        return self.trainings if kind == "training" else self.predictions

    def model(self, owner: str, name: str) -> Model:
        model = self.models.get((owner, name))
        if model is None:
            raise not_found(f"Model {owner}/{name} not found.")
        return model

    def create_model(self, owner: str, name: str, body: JSON) -> Model:
        if (owner, name) in self.models:
            raise conflict(f"A model with the name {owner}/{name} already exists.")
        visibility = body.get("visibility")
        if visibility not in ("public", "private"):
            raise invalid("visibility must be 'public' or 'private'.")
        hardware = body.get("hardware")
        if not isinstance(hardware, str) or not hardware:
            raise invalid("hardware is required.")
        description = body.get("description")
        model = Model(owner, name, str(description) if description else None, visibility, hardware)
        self.models[(owner, name)] = model
        return model

    def delete_model(self, owner: str, name: str) -> None:
        model = self.model(owner, name)
        if model.versions:
            raise conflict(
                f"Model {owner}/{name} has versions: delete them before deleting the model."
            )
        del self.models[(owner, name)]

    def find_version(self, ref: str) -> tuple[Model, JSON]:
        """``owner/name:id`` or a bare version id of any model."""
        if ":" in ref:
            slug, vid = ref.split(":", 1)
            owner, _, name = slug.partition("/")
            model = self.model(owner, name)
            if vid in model.versions:
                return model, model.versions[vid]
        else:
            for model in self.models.values():
                if ref in model.versions:
                    return model, model.versions[ref]
        raise invalid(f"Invalid version or not permitted: {ref}")

    def put_output(self, path: str, content: bytes, content_type: str, ttl_s: float) -> None:
        self.files.put_blob(OUTPUT_BLOB + path, content)
        self.outputs[path] = StoredFile(content, content_type, time.time() + ttl_s)

    def get_output(self, path: str) -> StoredFile | None:
        stored = self.outputs.get(path)
        if (
            stored is not None
            and stored.expires_at is not None
            and stored.expires_at <= time.time()
        ):
            # Deleted, as Replicate deletes them.
            del self.outputs[path]
            self.files.delete_blobs([OUTPUT_BLOB + path])
            return None
        return stored

    def expire_outputs(self) -> int:
        count = len(self.outputs)
        self.files.delete_blobs([OUTPUT_BLOB + path for path in self.outputs])
        self.outputs.clear()
        return count

    def put_upload(self, record: JSON, content: bytes) -> None:
        self.files.put_blob(UPLOAD_BLOB + str(record["id"]), content)
        self.uploads[str(record["id"])] = (record, content)

    def delete_upload(self, fid: str) -> bool:
        if self.uploads.pop(fid, None) is None:
            return False
        self.files.delete_blobs([UPLOAD_BLOB + fid])
        return True

    def clear(self) -> None:
        """Forget every model, job and file."""
        self.files.delete_blobs(
            [OUTPUT_BLOB + p for p in self.outputs] + [UPLOAD_BLOB + f for f in self.uploads]
        )
        for name in ("models", "trainings", "predictions", "outputs", "uploads"):
            getattr(self, name).clear()
