"""An emulator's state on disk, so that a restarted emulator answers as the provider would (the
customers, models, trainings and files it made are still there).

One SQLite file per emulator (the standard library's ``sqlite3``), in the folder named by
``VISIONA_EMULATOR_STATE_DIR`` (each emulator's ``--state-dir``); without one an emulator keeps
its state in memory only. ``VISIONA_EMULATOR_FRESH=1`` (``--fresh``) starts it empty.

The state is documents, JSON by (kind, id), kept in creation order, and blobs (file contents).
:meth:`StateFile.sync` writes, in one transaction, the documents that changed since the last
sync and deletes those that are gone; a transaction is atomic, so an emulator killed in the
middle of one (SIGKILL included) comes back with the state of its last completed sync. The
emulators sync after every request they answer and after every change of their own (a job
moving on, a webhook delivered).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

STATE_DIR_ENV = "VISIONA_EMULATOR_STATE_DIR"
FRESH_ENV = "VISIONA_EMULATOR_FRESH"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE TABLE IF NOT EXISTS blobs (
    key TEXT PRIMARY KEY,
    content BLOB NOT NULL
);
"""

Documents = Mapping[str, Mapping[str, Any]]


def state_dir_from_env() -> Path | None:
    folder = os.environ.get(STATE_DIR_ENV, "").strip()
    return Path(folder) if folder else None


def state_path(name: str, state_dir: Path | None) -> Path | None:
    """``<state dir>/<name>.sqlite3``, or None (memory only)."""
    return state_dir / f"{name}.sqlite3" if state_dir is not None else None


def fresh_from_env() -> bool:
    return os.environ.get(FRESH_ENV, "").strip().lower() in ("1", "true", "yes")


class StateFile:
    """Documents and blobs in one SQLite file, or nowhere (``path`` None: memory only)."""

    def __init__(self, path: Path | None, *, fresh: bool = False) -> None:
        self.path = path
        # The body last written per document, so a sync writes only what changed.
        self._saved: dict[tuple[str, str], str] = {}
        # Documents that will not change any more once written (an event, a finished job).
        self._settled: set[tuple[str, str]] = set()
        self._conn: sqlite3.Connection | None = None
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        if fresh:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        # Autocommit mode: transactions are the explicit BEGIN ... COMMIT below. The
        # emulator's requests run on its serving thread, its set-up on another.
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        # WAL: a commit is one append, and a process killed mid-write leaves the last
        # committed state (the torn transaction is rolled back when the file is opened).
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)

    @property
    def persistent(self) -> bool:
        return self._conn is not None

    def load(self) -> dict[str, dict[str, Any]]:
        """Every stored document by kind, then id, in the order they were first written."""
        documents: dict[str, dict[str, Any]] = {}
        if self._conn is None:
            return documents
        for kind, doc_id, body in self._conn.execute(
            "SELECT kind, id, body FROM documents ORDER BY rowid"
        ):
            documents.setdefault(kind, {})[doc_id] = json.loads(body)
            self._saved[(kind, doc_id)] = body
        return documents

    def sync(self, documents: Documents, settled: Callable[[str, Any], bool] | None = None) -> int:
        """Make the file hold exactly ``documents`` (every kind, every id); answer how many
        were written or deleted. ``settled(kind, document)`` says a document will not change
        again, so that it is not looked at once written."""
        if self._conn is None:
            return 0
        upserts: list[tuple[str, str, str]] = []
        present: set[tuple[str, str]] = set()
        for kind, docs in documents.items():
            for doc_id, doc in docs.items():
                key = (kind, doc_id)
                present.add(key)
                if key in self._settled:
                    continue
                body = json.dumps(doc, separators=(",", ":"))
                if self._saved.get(key) != body:
                    upserts.append((kind, doc_id, body))
                elif settled is not None and settled(kind, doc):
                    self._settled.add(key)
        gone = [key for key in self._saved if key not in present]
        if not upserts and not gone:
            return 0
        with self._transaction() as conn:
            conn.executemany(
                "INSERT INTO documents (kind, id, body) VALUES (?, ?, ?) "
                "ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body",
                upserts,
            )
            conn.executemany("DELETE FROM documents WHERE kind = ? AND id = ?", gone)
        for kind, doc_id, body in upserts:
            self._saved[(kind, doc_id)] = body
        for key in gone:
            self._saved.pop(key, None)
            self._settled.discard(key)
        return len(upserts) + len(gone)

    def put_blob(self, key: str, content: bytes) -> None:
        if self._conn is not None:
            with self._transaction() as conn:
                conn.execute(
                    "INSERT INTO blobs (key, content) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET content = excluded.content",
                    (key, content),
                )

    def blob(self, key: str) -> bytes | None:
        if self._conn is None:
            return None
        row = self._conn.execute("SELECT content FROM blobs WHERE key = ?", (key,)).fetchone()
        return bytes(row[0]) if row else None

    def delete_blobs(self, keys: list[str]) -> None:
        if self._conn is not None and keys:
            with self._transaction() as conn:
                conn.executemany("DELETE FROM blobs WHERE key = ?", [(k,) for k in keys])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _transaction(self) -> _Transaction:
        assert self._conn is not None
        return _Transaction(self._conn)


class _Transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")
