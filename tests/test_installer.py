"""Fast checks of the installer's inputs; the real build and install run in installer/smoke_test.sh."""

from __future__ import annotations

import configparser
import importlib.util
import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from studio.core import registry

ROOT = Path(__file__).resolve().parents[1]
INSTALLER = ROOT / "installer"


def _load_contents():
    spec = importlib.util.spec_from_file_location("bundle_contents", INSTALLER / "bundle_contents.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


contents = _load_contents()


def test_builtins_match_the_plugin_folders():
    assert contents.builtin_plugins() == registry.BUILTINS
    assert set(registry.BUILTINS) == set(contents.plugin_folders())


@pytest.mark.parametrize("package", registry.BUILTINS)
def test_every_plugin_module_is_a_hidden_import(package):
    hidden = set(contents.hidden_imports())
    assert set(contents.plugin_modules(package)) <= hidden
    assert set(contents.manifest_entries(package)) <= hidden, "a plugin.toml entry names a module the bundle lacks"


def test_no_hidden_import_is_also_excluded():
    clashes = [name for name in contents.hidden_imports() if name.startswith(contents.EXCLUDES)]
    assert clashes == []


def test_bundle_data_puts_models_resources_and_manifests_at_their_runtime_paths():
    destinations = {(Path(src).relative_to(ROOT).as_posix(), dest.replace(os.sep, "/")) for src, dest in contents.data_files()}
    for package in registry.BUILTINS:
        folder = package.replace(".", "/")
        assert (f"{folder}/plugin.toml", folder) in destinations
    assert ("resources/icon.svg", "resources") in destinations
    assert ("resources/theme.qss", "resources") in destinations
    for config in sorted((ROOT / "models").glob("*/config.json")):
        model = config.parent.relative_to(ROOT).as_posix()
        assert (f"{model}/config.json", model) in destinations
        weights = [src for src, dest in destinations if dest.startswith(model) and src.endswith(".safetensors")]
        assert weights, f"{model} has no weights in the bundle"
    assert not any("__pycache__" in src or "training_state" in src for src, _ in destinations)


def test_a_model_folder_mid_training_is_left_out(tmp_path, monkeypatch):
    models = tmp_path / "models"
    complete, diffusers_layout, partial = models / "done", models / "unet", models / "training"
    for folder in (complete, diffusers_layout / "unet", partial):
        folder.mkdir(parents=True)
    for folder in (complete, diffusers_layout, partial):
        (folder / "config.json").write_text("{}")
        (folder / "training_state.safetensors").write_bytes(b"x")
    (complete / "model.safetensors").write_bytes(b"x")
    (diffusers_layout / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"x")
    (tmp_path / "resources").mkdir()
    monkeypatch.setattr(contents, "ROOT", tmp_path)
    monkeypatch.setattr(contents, "builtin_plugins", lambda: ())
    assert contents.data_files() == [
        (str(complete / "config.json"), "models/done"),
        (str(complete / "model.safetensors"), "models/done"),
        (str(diffusers_layout / "config.json"), "models/unet"),
        (str(diffusers_layout / "unet" / "diffusion_pytorch_model.safetensors"), "models/unet/unet"),
    ]


def test_shipped_models_use_builtin_plugins():
    plugin_ids = {manifest_id(package) for package in registry.BUILTINS}
    for config in sorted((ROOT / "models").glob("*/config.json")):
        assert json.loads(config.read_text())["plugin"] in plugin_ids, f"{config} needs a plugin the bundle lacks"


def manifest_id(package: str) -> str:
    import tomllib

    return tomllib.loads((ROOT / package.replace(".", "/") / "plugin.toml").read_text())["id"]


@pytest.mark.parametrize(
    ("destination", "dropped"),
    [
        ("torch/include/ATen/core/Tensor.h", True),
        ("torch/bin/protoc", True),
        ("torch\\share\\cmake\\Torch\\TorchConfig.cmake", True),
        ("torch/lib/libtorch_cpu.so", False),
        ("torch/bin/torch_shm_manager", False),
        ("torch/lib/libtorchbind_test.so", True),
        ("models/ppca-mnist/model.safetensors", False),
        ("plugins/ppca/plugin.toml", False),
    ],
)
def test_pruning_drops_build_only_files(destination, dropped):
    assert contents.pruned(destination) is dropped


def test_desktop_entry_launches_the_installed_app():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(INSTALLER / "linux" / "studio.desktop")
    desktop = entry["Desktop Entry"]
    assert desktop["Type"] == "Application"
    assert desktop["Exec"].split()[0] == "studio-app"
    assert desktop["Icon"] == "studio"
    assert desktop["Terminal"] == "false"
    assert desktop["Categories"].endswith(";")
    build = (INSTALLER / "build_linux.sh").read_text()
    assert "usr/bin/studio-app" in build and "icons/hicolor/scalable/apps/studio.svg" in build


def test_postrm_removes_what_is_left_in_the_install_folder(tmp_path):
    leftover = tmp_path / "opt" / "studio" / "cache" / "leftover.bin"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"x")
    env = {**os.environ, "DPKG_ROOT": str(tmp_path)}
    subprocess.run(["sh", str(INSTALLER / "linux" / "postrm"), "remove"], env=env, check=True)
    assert not (tmp_path / "opt" / "studio").exists()


def test_runtime_hook_keeps_numba_cache_out_of_the_bundle(monkeypatch, tmp_path):
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path))
    for name in ("NUMBA_CACHE_DIR", "NUMBA_CACHE_LOCATOR_CLASSES", "HF_HUB_OFFLINE"):
        monkeypatch.setenv(name, "")  # records the real value, restored after the test
        monkeypatch.delenv(name)
    runpy.run_path(str(INSTALLER / "rthook_studio.py"))
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "cache" / "numba")
    locators = os.environ["NUMBA_CACHE_LOCATOR_CLASSES"].split(",")
    assert "InTreeCacheLocator" not in locators
    from numba.core import caching

    assert all(hasattr(caching, name) for name in locators), "numba renamed its cache locators"
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_launcher_picks_gui_or_cli_by_program_name(tmp_path):
    gui = tmp_path / "studio-app.py"
    gui.symlink_to(INSTALLER / "launcher.py")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cli = subprocess.run([sys.executable, str(INSTALLER / "launcher.py"), "--version"], env=env,
                         capture_output=True, text=True, check=True)
    assert cli.stdout.startswith("studio ")
    app = subprocess.run([sys.executable, str(gui), "--help"], env=env, capture_output=True, text=True, check=True)
    assert app.stdout.startswith("usage: studio-app")
