import json
import subprocess
import sys

import pytest
from conftest import ROOT

from studio.core import media


def studio(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "studio", *map(str, args)], cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=120)


def test_plugins_and_models_listing():
    out = studio("plugins", "--json")
    assert out.returncode == 0, out.stderr
    plugins = {p["id"]: p for p in json.loads(out.stdout)}
    assert {a["verb"] for a in plugins["studio.ppca"]["actions"]} >= {"generate", "edit", "interpolate", "train"}
    models = json.loads(studio("models", "--json").stdout)
    assert any(m["id"] == "ppca-mnist" and len(m["sha256"]) == 64 for m in models)


def test_generate_writes_a_grid_with_metadata_and_records_it(tmp_path):
    out_file = tmp_path / "grid.png"
    out = studio("--project", tmp_path / "proj", "generate", "ppca-mnist", "-n", 4, "--seed", 11,
                 "--set", "temperature=0.8", "--out", out_file)
    assert out.returncode == 0, out.stderr
    meta = media.read_metadata(out_file)
    assert meta["seed"] == 11 and meta["params"]["temperature"] == 0.8 and len(meta["record_ids"]) == 4
    info = studio("info", out_file)
    assert json.loads(info.stdout)["model_id"] == "ppca-mnist"
    from studio.core.store import Project

    assert len(Project(tmp_path / "proj").records()) == 4


def test_edit_interpolate_and_likelihood(tmp_path, testdata):
    source = testdata / "images-odd" / "hopper.png"
    assert studio("edit", "ppca-mnist", "--input", source, "--out", tmp_path / "e.png").returncode == 0
    out = studio("interpolate", "ppca-mnist", "--from", source, "--seed-b", 3, "--steps", 4, "--out", tmp_path / "i.png")
    assert out.returncode == 0, out.stderr
    assert media.load_image(tmp_path / "i.png").shape[1] > 4 * 28
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "digit.png").write_bytes((ROOT / "models" / "ppca-mnist" / "samples.png").read_bytes())
    (folder / "hopper.png").write_bytes(source.read_bytes())
    (folder / "broken.png").write_bytes((testdata / "images-bad" / "broken.png").read_bytes())
    ranking = json.loads(studio("likelihood", "ppca-mnist", "--input", folder, "--json").stdout)
    assert [row[0].split("/")[-1] for row in ranking["ranking"]][0] in ("digit.png", "hopper.png")
    assert len(ranking["ranking"]) == 2 and len(ranking["skipped"]) == 1


@pytest.mark.parametrize("args", [
    ("generate", "no-such-model"),
    ("generate", "ppca-mnist", "--set", "temperature=99"),
    ("generate", "ppca-mnist", "--set", "colour=red"),
    ("edit", "ppca-mnist", "--input", "/no/such/file.png"),
    ("info", "/no/such/file.png"),
    ("train", "nofamily", "--data", ".", "--out", "x"),
    ("generate", "ppca-mnist", "--device", "cuda"),
])
def test_errors_are_one_line_without_traceback(args):
    out = studio(*args)
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("studio: error: "), out.stderr
    assert "Traceback" not in out.stderr


def test_every_bad_image_fails_cleanly_on_the_cli(testdata):
    for path in sorted((testdata / "images-bad").iterdir()):
        out = studio("edit", "ppca-mnist", "--input", path)
        assert out.returncode == 1 and "Traceback" not in out.stderr
        assert out.stderr.strip().splitlines()[-1].startswith(f"studio: error: {path}")


def test_debug_shows_the_traceback():
    out = studio("--debug", "generate", "no-such-model")
    assert out.returncode != 0 and "Traceback" in out.stderr


def test_train_a_new_model_from_a_folder_with_bad_files(tmp_path, testdata):
    data = tmp_path / "data"
    for index, name in enumerate(["hopper.png", "hopper.jpg", "hopper_gray.jpg", "tiny.png", "transparent.png"]):
        (data / "a").mkdir(parents=True, exist_ok=True)
        (data / "a" / f"{index}{name}").write_bytes((testdata / "images-odd" / name).read_bytes())
    (data / "broken.png").write_bytes((testdata / "images-bad" / "truncated_image.png").read_bytes())
    (data / "notes.txt").write_text("not an image")
    out = studio("train", "ppca", "--data", data, "--out", tmp_path / "mymodel", "--set", "components=3", "--set", "size=16")
    assert out.returncode == 0, out.stderr
    card = (tmp_path / "mymodel" / "MODEL_CARD.md").read_text()
    assert "5 images, 2 skipped" in card and "truncated" in card
    gen = studio("generate", tmp_path / "mymodel", "--out", tmp_path / "g.png")
    assert gen.returncode == 0, gen.stderr
    assert media.load_image(tmp_path / "g.png").shape[0] >= 16
    empty = tmp_path / "empty"
    empty.mkdir()
    out = studio("train", "ppca", "--data", empty, "--out", tmp_path / "m2")
    assert out.returncode == 1 and "the folder is empty" in out.stderr
