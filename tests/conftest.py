"""Shared fixtures: every test gets its own STUDIO_HOME, Qt runs offscreen, nothing goes online."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # tiny test models run fastest on one thread
os.environ["HF_HUB_OFFLINE"] = "1"

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = ROOT.parent / "shared" / "testdata"
if not TESTDATA.exists():
    TESTDATA = Path(os.environ.get("STUDIO_TESTDATA", "/work/shared/testdata"))


@pytest.fixture(scope="session", autouse=True)
def built_datasets() -> None:
    """The data sets some tests explore (gitignored; the builders are deterministic)."""
    from studio.data import build

    for name in ("mnist-5k", "emoji-32"):
        if not (ROOT / "data" / name / "dataset.json").exists():
            build(name, ROOT / "data" / name)


@pytest.fixture(autouse=True)
def studio_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "studio-home"
    monkeypatch.setenv("STUDIO_HOME", str(home))
    return home


@pytest.fixture
def testdata() -> Path:
    return TESTDATA


SLOW_PLUGIN_TOML = """
id = "test.slow"
name = "Slow test plugin"
family = "slowtest"
modality = "image"
version = "0.1"

[[actions]]
id = "count"
verb = "generate"
entry = "{package}.actions:count"
needs_model = false
params = [
  {{ name = "steps", type = "int", default = 5, min = 1, max = 100000 }},
  {{ name = "fail", type = "bool", default = false }},
]
"""

SLOW_PLUGIN_CODE = '''
import threading

import numpy as np

from studio.core.plugin import Progress, Result

GATE = threading.Semaphore(0)   # the test releases one permit per step it lets through
STEPS_TAKEN = []


def count(ctx):
    STEPS_TAKEN.clear()
    steps = ctx.params["steps"]
    value = ctx.rng().integers(0, 256)
    for i in range(steps):
        GATE.acquire()
        STEPS_TAKEN.append(i)
        if ctx.params["fail"]:
            raise RuntimeError("the plugin broke on purpose")
        yield Progress(i + 1, steps)
    return Result(images=[np.full((4, 4, 3), value, np.uint8)])
'''


@pytest.fixture
def slow_plugin(tmp_path, monkeypatch):
    """A plugin package on sys.path whose action waits for the test at every step."""
    package = "slowplugin_" + tmp_path.name.replace("-", "_")
    folder = tmp_path / "plugsrc" / package
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "plugin.toml").write_text(textwrap.dedent(SLOW_PLUGIN_TOML.format(package=package)))
    (folder / "actions.py").write_text(SLOW_PLUGIN_CODE)
    monkeypatch.syspath_prepend(str(tmp_path / "plugsrc"))
    yield package
    for name in [m for m in sys.modules if m.startswith(package)]:
        del sys.modules[name]
