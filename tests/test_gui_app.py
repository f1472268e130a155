"""The app entry point: arguments, a window without torch, the smoke test, safe mode."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from studio.app import parse_args, run_smoke_test
from studio.core.checkpoints import CONFIG
from studio.core.paths import shipped_models_dir
from studio.qt.main_window import MainWindow

ROOT = Path(__file__).resolve().parents[1]


def test_arguments():
    args = parse_args(["--project", "/tmp/p", "--device", "cpu", "--safe-mode", "--smoke-test"])
    assert args.project == Path("/tmp/p") and args.device == "cpu" and args.safe_mode and args.smoke_test
    assert parse_args([]).device is None


def test_window_opens_without_importing_torch(studio_home):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "STUDIO_HOME": str(studio_home)}
    done = subprocess.run(
        [sys.executable, "main.py", "--quit-after-show", "--project", str(studio_home / "p")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "first window after" in done.stdout
    assert "torch imported: False" in done.stdout
    assert (studio_home / "p" / "project.db").exists()
    assert json.loads((studio_home / "config" / "settings.json").read_text())["last_project"] == str(studio_home / "p")


def _models_root(tmp_path: Path, *names: str) -> Path:
    root = tmp_path / "models"
    for name in names:
        shutil.copytree(shipped_models_dir() / name, root / name)
    return root


def test_smoke_test_generates_with_each_shipped_model(qtbot, tmp_path, capsys):
    window = MainWindow(device="cpu", project_path=tmp_path / "smoke")
    qtbot.addWidget(window)
    window.registry.model_roots = [(_models_root(tmp_path, "ppca-mnist", "ppca-emoji"), "shipped")]
    window.registry.checkpoints(refresh=True)
    assert run_smoke_test(window, timeout_s=60) == 0
    out = capsys.readouterr().out
    assert "ok   ppca-mnist" in out and "ok   ppca-emoji" in out
    assert {r.model_id for r in window.project.records()} == {"ppca-mnist", "ppca-emoji"}
    window.close()


def test_smoke_test_fails_for_a_model_whose_plugin_is_missing(qtbot, tmp_path, capsys):
    root = _models_root(tmp_path, "ppca-mnist")
    config = json.loads((root / "ppca-mnist" / CONFIG).read_text())
    (root / "orphan").mkdir()
    (root / "orphan" / CONFIG).write_text(json.dumps({**config, "id": "orphan", "plugin": "nobody.here"}))
    window = MainWindow(device="cpu", project_path=tmp_path / "smoke")
    qtbot.addWidget(window)
    window.registry.model_roots = [(root, "shipped")]
    window.registry.checkpoints(refresh=True)
    assert run_smoke_test(window, timeout_s=60) == 1
    assert "FAIL orphan: plugin 'nobody.here' is unavailable" in capsys.readouterr().err
    window.close()


def test_safe_mode_lists_built_ins_only(qtbot, slow_plugin, monkeypatch):
    entry_point = SimpleNamespace(name="slow", value=slow_plugin, dist=None)
    monkeypatch.setattr("studio.core.registry.entry_points", lambda group: [entry_point])
    window = MainWindow(device="cpu", safe_mode=True)
    qtbot.addWidget(window)
    assert window.models.item_for("test.slow") is None
    assert window.models.item_for("studio.ppca") is not None
    assert "safe mode" in window.about_text()
    window.close()
