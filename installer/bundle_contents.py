"""What goes into the frozen bundle: shared by studio.spec (every OS) and the installer tests.

Plain Python with no PyInstaller import, so the tests can check the lists without a build.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = ROOT / "studio" / "core" / "registry.py"

# Plugin code and some library code is imported by string at run time (registry entries,
# diffusers' lazy modules, importlib in the waveform player): PyInstaller cannot see those.
LIBRARY_SUBMODULES = ("studio", "diffusers.models", "diffusers.schedulers", "diffusers.utils")
LIBRARY_HIDDEN_IMPORTS = (
    "sounddevice",
    "soundfile",
    "superqt",
    "pyqtgraph",
    "safetensors.torch",
    "scipy.signal",
    "numba",
    "sklearn.utils.extmath",
    "sklearn.manifold",
    "PySide6.QtSvg",
)
# importlib.metadata lookups made at run time (diffusers checks versions of what it finds).
METADATA = (
    "torch", "diffusers", "huggingface_hub", "safetensors", "numpy", "pillow", "scipy",
    "filelock", "requests", "numba", "llvmlite", "platformdirs", "packaging", "regex", "tqdm",
    "pyyaml", "scikit-learn",
)
# Never imported by the installed app: training data builders, training extras, dev tools,
# and the parts of Qt nobody uses. transformers (with diffusers.pipelines, left out too) only
# serves the diffusion plugin's import_pipeline action.
EXCLUDES = (
    "tkinter", "_tkinter", "matplotlib", "pandas", "IPython", "pytest", "_pytest", "pytestqt",
    "transformers", "tokenizers", "hf_xet", "accelerate", "mlxtend", "mido", "fontTools", "tensorboard", "triton",
    "torch.utils.tensorboard", "torchvision", "torchaudio",
    "studio.data", "studio.train", "tests",
    "PySide6.QtNetwork", "PySide6.QtQml", "PySide6.QtQuick", "PySide6.QtQuickWidgets",
    "PySide6.QtWebEngineCore", "PySide6.QtWebEngineWidgets", "PySide6.Qt3DCore",
    "PySide6.QtMultimedia", "PySide6.QtCharts", "PySide6.QtDataVisualization",
    "PySide6.QtPdf", "PySide6.QtDesigner", "PySide6.QtHelp", "PySide6.QtUiTools", "PySide6.QtSql",
    "PySide6.QtBluetooth", "PySide6.QtPositioning", "PySide6.QtSerialPort", "PySide6.QtSensors",
)
# Collected by library hooks as data but never used at run time (headers, cmake files,
# test binaries, static libraries): dropped from the bundle by destination prefix/suffix.
PRUNED_PREFIXES = (
    "torch/include", "torch/share", "torch/bin/", "torch/test/",
    "torch/lib/libtorchbind_test", "torch/lib/libjitbackend_test", "torch/lib/libbackend_with_compiler",
    "torch/lib/libaoti_custom_ops",
    "PySide6/include", "PySide6/typesystems", "PySide6/glue", "PySide6/scripts",
    "pyqtgraph/examples",
)
PRUNED_SUFFIXES = (".a", ".h", ".hpp", ".pyi", ".cmake")
KEPT = ("torch/bin/torch_shm_manager",)  # `import torch` checks that it exists
# Resume state of a training run, and the README's screenshot.
UNSHIPPED_FILES = ("training_state.safetensors", "screenshot.png")
# The app's own source (a few hundred KB) is kept next to its bytecode, as in a normal install,
# for numba's jitted modules.
SOURCE_ALONGSIDE = ("studio", "plugins")


def builtin_plugins() -> tuple[str, ...]:
    """The BUILTINS tuple of studio/core/registry.py, read without importing the app."""
    tree = ast.parse(REGISTRY.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "BUILTINS" for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise LookupError(f"{REGISTRY} defines no BUILTINS tuple")


def plugin_folders() -> dict[str, Path]:
    """Every plugins/<name>/ holding a plugin.toml, keyed by its package name."""
    return {f"plugins.{toml.parent.name}": toml.parent for toml in sorted(ROOT.glob("plugins/*/plugin.toml"))}


def plugin_modules(package: str) -> list[str]:
    folder = ROOT / Path(*package.split("."))
    return [package] + [f"{package}.{py.stem}" for py in sorted(folder.glob("*.py")) if py.stem != "__init__"]


def manifest_entries(package: str) -> list[str]:
    """The modules a plugin.toml names (loader and action entries)."""
    manifest = tomllib.loads((ROOT / Path(*package.split(".")) / "plugin.toml").read_text(encoding="utf-8"))
    entries = [manifest.get("loader", "")] + [action.get("entry", "") for action in manifest.get("actions", [])]
    return sorted({entry.partition(":")[0] for entry in entries if entry})


def hidden_imports() -> list[str]:
    names = ["plugins"]
    for package in builtin_plugins():
        names += plugin_modules(package)
    return names + list(LIBRARY_HIDDEN_IMPORTS)


def shipped_checkpoints() -> list[Path]:
    """models/<id>/ folders with a config.json and weights (model.safetensors, or the diffusers
    layout's unet/*.safetensors); a folder mid-training may have neither yet."""
    return [
        config.parent
        for config in sorted((ROOT / "models").glob("*/config.json"))
        if any(weights.name not in UNSHIPPED_FILES for weights in config.parent.rglob("*.safetensors"))
    ]


def data_files() -> list[tuple[str, str]]:
    """(source, destination folder) pairs: models/ and resources/ at the bundle root, manifests next to their code."""
    pairs = []
    for folder in [*shipped_checkpoints(), ROOT / "resources"]:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.name not in UNSHIPPED_FILES:
                pairs.append((str(path), str(path.parent.relative_to(ROOT))))
    for package in builtin_plugins():
        folder = ROOT / Path(*package.split("."))
        pairs.append((str(folder / "plugin.toml"), str(folder.relative_to(ROOT))))
    return pairs


def pruned(destination: str) -> bool:
    destination = destination.replace("\\", "/")
    if destination in KEPT:
        return False
    return destination.startswith(PRUNED_PREFIXES) or destination.endswith(PRUNED_SUFFIXES)


def version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
