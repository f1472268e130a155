"""A real subprocess killed with SIGKILL while it runs many jobs: nothing finished is lost."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

from conftest import ROOT

from studio.core import media
from studio.core.store import Project

CHILD = textwrap.dedent("""
    import sys
    from studio.core.engine import Engine, Job
    from studio.core.registry import Registry
    from studio.core.store import Project

    engine = Engine(Registry(), Project(sys.argv[1]))
    for seed in range(100000):
        job = engine.execute(Job("studio.ppca", "generate", "ppca-mnist", {"count": 3}, seed=seed))
        print(*job.record_ids, flush=True)
""")


def test_kill_9_during_many_jobs_keeps_every_finished_job(tmp_path):
    path = tmp_path / "project"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    finished: list[int] = []
    try:
        for line in child.stdout:
            finished += [int(x) for x in line.split()]
            if len(finished) >= 90:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    with sqlite3.connect(path / "project.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    project = Project(path)
    records = {r.id: r for r in project.records()}
    assert set(finished) <= set(records)
    for record in records.values():  # every row, including any committed after the last line we read
        assert media.load_image(record.file).shape[:2] == (28, 28)
