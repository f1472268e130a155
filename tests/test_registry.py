import subprocess
import sys
import textwrap
from importlib.metadata import EntryPoint

import pytest
from conftest import ROOT

from studio.core import registry as registry_module
from studio.core.registry import Registry


def test_listing_plugins_imports_no_torch_and_no_plugin_code():
    code = textwrap.dedent("""
        import sys
        from studio.core.registry import Registry
        r = Registry()
        assert r.get("studio.ppca").usable
        leaked = [m for m in sys.modules if m == "torch" or m.startswith("plugins.") and m != "plugins.ppca"]
        print(leaked)
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _package(root, name, toml, code=None, init="raise RuntimeError('package code must not run while listing')\n"):
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text(init)
    (folder / "plugin.toml").write_text(toml)
    if code is not None:
        (folder / "actions.py").write_text(code)


GOOD = """
id = "{id}"
name = "Plug"
family = "fam"
modality = "image"
version = "1"
[[actions]]
id = "generate"
verb = "generate"
entry = "{pkg}.actions:generate"
needs_model = false
"""


@pytest.fixture
def packages(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    _package(tmp_path, "badtoml", "id = 'x'\nname = [")
    _package(tmp_path, "badverb", GOOD.format(id="bad.verb", pkg="badverb").replace('verb = "generate"', 'verb = "dance"'))
    _package(tmp_path, "importfails", GOOD.format(id="import.fails", pkg="importfails"), "import not_a_module_at_all\n", init="")
    _package(tmp_path, "thirdparty", GOOD.format(id="third.party", pkg="thirdparty"), "", init="")
    return tmp_path


def test_broken_plugins_are_isolated(packages):
    reg = Registry(builtins=("plugins.ppca", "badtoml", "badverb", "importfails", "nosuchpackage"))
    assert reg.get("studio.ppca").usable
    assert "cannot read the manifest" in reg.get("badtoml").error
    assert "verb 'dance'" in reg.get("badverb").error
    assert "no plugin.toml" in reg.get("nosuchpackage").error
    info = reg.get("import.fails")
    assert info.usable  # the manifest is fine; the code fails only when first used
    action = reg.manifest("import.fails").action("generate")
    with pytest.raises(registry_module.PluginImportError, match="failed to import"):
        reg.action_fn("import.fails", action)
    assert not reg.get("import.fails").usable
    assert "No module named" in reg.get("import.fails").error


def test_third_party_plugins_are_off_until_enabled_and_absent_in_safe_mode(packages, monkeypatch):
    entry = EntryPoint(name="thirdparty", value="thirdparty", group=registry_module.GROUP)
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [entry])
    assert not Registry().get("third.party").enabled
    assert Registry(enabled=["third.party"]).get("third.party").usable
    assert "third.party" not in Registry(enabled=["third.party"], safe_mode=True).plugins


def test_checkpoints_are_found_by_id_and_folder():
    reg = Registry()
    ckpt = reg.checkpoint("ppca-mnist")
    assert ckpt.plugin == "studio.ppca" and len(ckpt.sha256) == 64
    assert reg.checkpoint(str(ckpt.path)).id == "ppca-mnist"
    with pytest.raises(ValueError, match="no model 'nope'"):
        reg.checkpoint("nope")


def test_core_never_imports_qt():
    offenders = []
    for path in (ROOT / "studio" / "core").rglob("*.py"):
        text = path.read_text()
        if any(word in text for word in ("PySide6", "PyQt", "pyqtgraph", "studio.qt")):
            offenders.append(path.name)
    assert offenders == []
