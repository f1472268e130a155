import sqlite3

import numpy as np
import pytest

from studio.core import media
from studio.core.engine import Engine, Job
from studio.core.registry import Registry
from studio.core.store import Project, ProjectError


def generate(project, count=2, seed=1):
    return Engine(Registry(), project).execute(Job("studio.ppca", "generate", "ppca-mnist", {"count": count}, seed=seed))


def test_reopened_project_shows_every_result_with_its_provenance(tmp_path):
    project = Project(tmp_path / "p")
    job = generate(project, count=3, seed=9)
    project.close()
    reopened = Project(tmp_path / "p")
    records = reopened.records()
    assert [r.id for r in records] == sorted(job.record_ids, reverse=True)
    first = records[-1]
    assert (first.plugin, first.action, first.model_id, first.seed) == ("studio.ppca", "generate", "ppca-mnist", 9)
    assert first.model_sha256 == Registry().checkpoint("ppca-mnist").sha256
    assert first.params == {"count": 3, "temperature": 1.0, "noise": False}
    assert first.device == "cpu" and first.duration >= 0
    assert np.array_equal(media.load_image(first.file)[..., 0], job.result.images[0][..., 0])
    assert reopened.latent(first).shape == (32,)
    assert reopened.model_ids() == ["ppca-mnist"]


def test_database_is_in_wal_mode(tmp_path):
    Project(tmp_path / "p")
    with sqlite3.connect(tmp_path / "p" / "project.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_star_delete_undo_and_purge(tmp_path):
    project = Project(tmp_path / "p")
    ids = generate(project, count=2).record_ids
    project.set_starred([ids[0]], True)
    assert [r.id for r in project.records(starred=True)] == [ids[0]]
    project.set_deleted([ids[1]], True)
    assert [r.id for r in project.records()] == [ids[0]]
    project.set_deleted([ids[1]], False)  # undo
    assert len(project.records()) == 2
    project.set_deleted([ids[1]], True)
    deleted_file = project.record(ids[1]).file
    project.close()
    reopened = Project(tmp_path / "p")
    assert [r.id for r in reopened.records()] == [ids[0]]
    assert not deleted_file.exists()


def test_lineage_from_an_input_that_is_a_project_result(tmp_path):
    project = Project(tmp_path / "p")
    engine = Engine(Registry(), project)
    parent = engine.execute(Job("studio.ppca", "generate", "ppca-mnist", {"count": 1}, seed=3))
    source = project.record(parent.record_ids[0]).file
    child = engine.execute(Job("studio.ppca", "edit", "ppca-mnist", {"image": str(source), "amount": 2.0}))
    assert project.record(child.record_ids[0]).parents == parent.record_ids


def test_save_as_copies_results_and_bookmarks(tmp_path):
    project = Project(tmp_path / "p")
    generate(project)
    project.add_bookmark("smile", "ppca-mnist", np.arange(4, dtype=np.float32))
    copy = project.save_as(tmp_path / "copy")
    assert len(copy.records()) == 2 and all(r.file.exists() for r in copy.records())
    [(_, name, model, latent)] = copy.bookmarks()
    assert (name, model) == ("smile", "ppca-mnist") and latent.tolist() == [0, 1, 2, 3]
    with pytest.raises(ProjectError, match="already exists"):
        project.save_as(tmp_path / "copy")


def test_unusable_project_location_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ProjectError, match="cannot open the project"):
        Project(blocker / "sub")
