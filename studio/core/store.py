"""The project: an SQLite database (WAL) beside an assets folder, safe against kill -9.

Each result file is written atomically first, then its row is committed in one transaction,
so a crash loses at most the job in flight. One row per output (an image or a take).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from studio import __version__
from studio.core import media
from studio.core.plugin import Result

DB_NAME = "project.db"
ASSETS = "assets"
SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_uid TEXT NOT NULL,
    batch_index INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    kind TEXT NOT NULL,
    plugin TEXT NOT NULL,
    action TEXT NOT NULL,
    model_id TEXT,
    model_sha256 TEXT,
    params TEXT NOT NULL,
    seed INTEGER,
    device TEXT,
    duration REAL,
    parents TEXT NOT NULL DEFAULT '[]',
    file TEXT NOT NULL,
    latent_file TEXT,
    width INTEGER,
    height INTEGER,
    metrics TEXT NOT NULL DEFAULT '{}',
    starred INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS results_model ON results(model_id);
CREATE TABLE IF NOT EXISTS bookmarks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    model_id TEXT NOT NULL,
    latent_file TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


class ProjectError(RuntimeError):
    pass


@dataclass
class Record:
    id: int
    job_uid: str
    batch_index: int
    created: float
    kind: str
    plugin: str
    action: str
    model_id: str | None
    model_sha256: str | None
    params: dict[str, Any]
    seed: int | None
    device: str | None
    duration: float | None
    parents: list[int]
    file: Path
    latent_file: Path | None
    width: int | None
    height: int | None
    metrics: dict[str, Any]
    starred: bool
    deleted: bool

    def metadata(self) -> dict[str, Any]:
        """What is embedded in exported files: enough to reproduce the result."""
        return {
            "studio_version": __version__,
            "plugin": self.plugin,
            "action": self.action,
            "model_id": self.model_id,
            "model_sha256": self.model_sha256,
            "params": self.params,
            "seed": self.seed,
            "batch_index": self.batch_index,
            "device": self.device,
            "duration": self.duration,
            "parents": self.parents,
            "width": self.width,
            "height": self.height,
            "created": self.created,
        }


Listener = Callable[[str, list[int]], None]


class Project:
    def __init__(self, path: Path) -> None:
        self.path = Path(path).expanduser().resolve()
        if self.path.suffix == ".db" or (self.path.is_file()):
            self.path = self.path.parent
        self.assets = self.path / ASSETS
        try:
            self.assets.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path / DB_NAME, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ProjectError(f"{self.path}: cannot open the project ({exc})") from None
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        self._purge_deleted()

    @property
    def name(self) -> str:
        return self.path.name

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _emit(self, event: str, ids: list[int]) -> None:
        for listener in list(self._listeners):
            listener(event, ids)

    # writing ----------------------------------------------------------------------------------
    def add_job(self, job, result: Result) -> list[int]:
        """Save every image and take of a finished job; returns the new record ids."""
        uid = uuid.uuid4().hex[:12]
        base = {
            "plugin": job.plugin_id,
            "action": job.action_id,
            "model_id": job.model_id,
            "model_sha256": job.model_sha256 or None,
            "params": _jsonable(job.params),
            "seed": job.seed,
            "device": job.resolved_device or job.device,
            "duration": round(job.elapsed, 3),
            "parents": list(job.parents) + self._parents_from_inputs(job.params),
        }
        ids = []
        outputs: list[tuple[str, Any]] = [("image", im) for im in result.images]
        outputs += [("audio", au) for au in result.audio]
        for index, (kind, item) in enumerate(outputs):
            ids.append(self.add(kind, item, {**base, "batch_index": index}, uid, result, index))
        self._emit("added", ids)
        return ids

    def add(self, kind: str, item: Any, fields: dict[str, Any], uid: str, result: Result, index: int) -> int:
        stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{uid}-{index}"
        created = time.time()
        meta = {**fields, "studio_version": __version__, "created": created}
        if kind == "image":
            height, width = item.shape[:2]
            meta.update(width=width, height=height)
            file = media.save_image(self.assets / f"{stem}.png", item, meta)
        else:
            width = height = None
            file = media.save_audio(self.assets / f"{stem}.wav", item, subtype="float", meta=meta)
        latent_file = None
        if index < len(result.latents):
            latent_file = self.assets / f"{stem}.latent.npy"
            _save_npy(latent_file, np.asarray(result.latents[index]))
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO results (job_uid, batch_index, created, kind, plugin, action, model_id,"
                " model_sha256, params, seed, device, duration, parents, file, latent_file, width, height,"
                " metrics) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    uid, index, created, kind, fields["plugin"], fields["action"], fields["model_id"],
                    fields["model_sha256"], json.dumps(fields["params"]), fields["seed"], fields["device"],
                    fields["duration"], json.dumps(fields["parents"]), file.name,
                    latent_file.name if latent_file else None, width, height,
                    json.dumps(_jsonable(result.metrics)),
                ),
            )
        return int(cursor.lastrowid)

    def _parents_from_inputs(self, params: dict[str, Any]) -> list[int]:
        names = [Path(v).name for v in params.values() if isinstance(v, str) and v]
        if not names:
            return []
        with self._lock:
            rows = self._db.execute(
                f"SELECT id FROM results WHERE file IN ({','.join('?' * len(names))})", names
            ).fetchall()
        return [r[0] for r in rows]

    def set_starred(self, ids: list[int], starred: bool) -> None:
        self._update("starred", int(starred), ids)

    def set_deleted(self, ids: list[int], deleted: bool) -> None:
        """Deleting hides a result (undoable); its files go when the project is next opened."""
        self._update("deleted", int(deleted), ids)

    def _update(self, column: str, value: int, ids: list[int]) -> None:
        with self._lock:
            self._db.executemany(f"UPDATE results SET {column}=? WHERE id=?", [(value, i) for i in ids])
        self._emit("changed", ids)

    def _purge_deleted(self) -> None:
        with self._lock:
            rows = self._db.execute("SELECT id, file, latent_file FROM results WHERE deleted=1").fetchall()
            for _, file, latent in rows:
                for name in (file, latent):
                    if name:
                        (self.assets / name).unlink(missing_ok=True)
            self._db.execute("DELETE FROM results WHERE deleted=1")

    # bookmarks ----------------------------------------------------------------------------------
    def add_bookmark(self, name: str, model_id: str, latent: np.ndarray) -> int:
        latent_file = self.assets / f"bookmark-{uuid.uuid4().hex[:12]}.latent.npy"
        _save_npy(latent_file, np.asarray(latent))
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO bookmarks (name, model_id, latent_file, created) VALUES (?,?,?,?)",
                (name, model_id, latent_file.name, time.time()),
            )
        self._emit("bookmarks", [int(cursor.lastrowid)])
        return int(cursor.lastrowid)

    def bookmarks(self, model_id: str | None = None) -> list[tuple[int, str, str, np.ndarray]]:
        query = "SELECT id, name, model_id, latent_file FROM bookmarks"
        args: tuple = ()
        if model_id:
            query, args = query + " WHERE model_id=?", (model_id,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY id", args).fetchall()
        return [(i, n, m, np.load(self.assets / f, allow_pickle=False)) for i, n, m, f in rows]

    # reading ------------------------------------------------------------------------------------
    def records(self, model_id: str | None = None, starred: bool = False, deleted: bool = False) -> list[Record]:
        query = "SELECT * FROM results WHERE deleted=?"
        args: list[Any] = [int(deleted)]
        if model_id:
            query += " AND model_id=?"
            args.append(model_id)
        if starred:
            query += " AND starred=1"
        with self._lock:
            rows = self._db.execute(query + " ORDER BY id DESC", args).fetchall()
        return [self._record(row) for row in rows]

    def record(self, record_id: int) -> Record:
        with self._lock:
            row = self._db.execute("SELECT * FROM results WHERE id=?", (record_id,)).fetchone()
        if row is None:
            raise KeyError(f"no result {record_id} in project {self.name}")
        return self._record(row)

    def model_ids(self) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT model_id FROM results WHERE deleted=0 AND model_id IS NOT NULL ORDER BY model_id"
            ).fetchall()
        return [r[0] for r in rows]

    def latent(self, record: Record) -> np.ndarray | None:
        if record.latent_file is None or not record.latent_file.exists():
            return None
        return np.load(record.latent_file, allow_pickle=False)

    def _record(self, row: tuple) -> Record:
        (rid, uid, index, created, kind, plugin, action, model_id, sha, params, seed, device, duration,
         parents, file, latent_file, width, height, metrics, starred, deleted) = row
        return Record(
            id=rid, job_uid=uid, batch_index=index, created=created, kind=kind, plugin=plugin,
            action=action, model_id=model_id, model_sha256=sha, params=json.loads(params), seed=seed,
            device=device, duration=duration, parents=json.loads(parents), file=self.assets / file,
            latent_file=self.assets / latent_file if latent_file else None, width=width, height=height,
            metrics=json.loads(metrics), starred=bool(starred), deleted=bool(deleted),
        )

    # copying -----------------------------------------------------------------------------------
    def save_as(self, target: Path) -> Project:
        """Copy this project (a consistent database snapshot plus its assets) to a new folder."""
        target = Path(target).expanduser().resolve()
        if (target / DB_NAME).exists():
            raise ProjectError(f"{target}: a project already exists there")
        (target / ASSETS).mkdir(parents=True, exist_ok=True)
        with self._lock:
            files = [r.file for r in self.records()] + [r.latent_file for r in self.records() if r.latent_file]
            destination = sqlite3.connect(target / DB_NAME)
            try:
                self._db.backup(destination)
            finally:
                destination.close()
        for file in files:
            if file.exists():
                shutil.copy2(file, target / ASSETS / file.name)
        for (name,) in self._db.execute("SELECT latent_file FROM bookmarks").fetchall():
            if (self.assets / name).exists():
                shutil.copy2(self.assets / name, target / ASSETS / name)
        return Project(target)


def _save_npy(path: Path, array: np.ndarray) -> None:
    import io

    from studio.core.checkpoints import atomic_write_bytes

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    atomic_write_bytes(path, buffer.getvalue())


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return f"<array {value.shape}>"
    return value
