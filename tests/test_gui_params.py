"""The parameters form: one widget per spec type, values round-trip, errors land on the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSlider, QSpinBox

from studio.core.params import Param, ParamError, ParamSet
from studio.core.plugin import Manifest
from studio.qt.params_form import FileField, FloatField, IntField, ParamsForm, ParamsPanel, SeedRow

SPECS = ParamSet((
    Param("steps", "int", 20, min=1, max=200, help="Sampling steps"),
    Param("guidance", "float", 1.5, min=0.0, max=10.0, step=0.5),
    Param("scale", "float", 2.0),
    Param("tiled", "bool", False),
    Param("sampler", "choice", "ddim", choices=("ddim", "euler")),
    Param("prompt", "str", "a cat"),
    Param("init", "image"),
    Param("data", "path", required=True),
    Param("seed_b", "int", min=0, max=4294967295),
    Param("extra", "int", 3, min=0, max=9, advanced=True),
))


@pytest.fixture
def form(qtbot):
    widget = ParamsForm(canvas_provider=lambda name: Path(f"/tmp/canvas-{name}.png"))
    qtbot.addWidget(widget)
    widget.set_params(SPECS)
    return widget


def test_each_type_gets_its_widget_and_defaults(form):
    fields = form.fields
    assert isinstance(fields["steps"].editor, QSpinBox)
    assert fields["steps"].editor.toolTip() == "Sampling steps"
    assert isinstance(fields["guidance"].editor, QDoubleSpinBox)
    assert isinstance(fields["guidance"].slider, QSlider)
    assert fields["scale"].slider is None  # unbounded: a spin box alone
    assert isinstance(fields["tiled"].editor, QCheckBox)
    assert isinstance(fields["sampler"].editor, QComboBox)
    assert isinstance(fields["prompt"].editor, QLineEdit)
    assert isinstance(fields["init"], FileField) and fields["init"].canvas_button is not None
    assert fields["data"].canvas_button is None
    assert isinstance(fields["seed_b"].editor, QDoubleSpinBox)  # beyond a 32-bit spin box
    values = form.values()
    assert values == {
        "steps": 20, "guidance": 1.5, "scale": 2.0, "tiled": False, "sampler": "ddim", "prompt": "a cat",
        "init": None, "data": None, "seed_b": None, "extra": 3,
    }


def test_values_round_trip_and_slider_follows_spin_box(form):
    form.set_values({"steps": 50, "guidance": 7.5, "tiled": True, "sampler": "euler", "seed_b": 4000000000})
    values = form.values()
    assert values["steps"] == 50 and values["guidance"] == 7.5 and values["tiled"] is True
    assert values["sampler"] == "euler" and values["seed_b"] == 4000000000
    field: FloatField = form.fields["guidance"]
    assert field.slider.value() == 750
    field.slider.setValue(200)
    assert form.values()["guidance"] == 2.0
    assert form.set_values({"nonsense": 1}) == ["nonsense"]
    form.reset()
    assert form.values()["steps"] == 20


def test_optional_int_has_an_auto_step(form):
    field: IntField = form.fields["seed_b"]
    assert field.value() is None
    assert field.spin.text() == "auto"
    field.set_value(0)
    assert field.value() == 0


def test_required_input_error_marks_the_field(form):
    with pytest.raises(ParamError, match="data is required"):
        form.validated()
    assert form.fields["data"].editor.property("invalid") is True
    form.fields["data"].set_value("/tmp")
    assert form.validated()["data"] == "/tmp"
    assert form.fields["data"].editor.property("invalid") is False


def test_canvas_option_uses_the_provider_at_run_time(form):
    field: FileField = form.fields["init"]
    field.canvas_button.setChecked(True)
    assert not field.line.isEnabled()
    assert form.values()["init"] == "/tmp/canvas-init.png"
    field.set_value("/some/file.png")
    assert not field.uses_canvas and form.values()["init"] == "/some/file.png"


def test_empty_canvas_is_a_readable_error(qtbot):
    form = ParamsForm(canvas_provider=lambda name: None)
    qtbot.addWidget(form)
    form.set_params(SPECS)
    form.fields["init"].canvas_button.setChecked(True)
    with pytest.raises(ParamError, match="canvas holds no image"):
        form.validated()
    assert form.fields["init"].editor.property("invalid") is True


def test_seed_modes(qtbot):
    row = SeedRow()
    qtbot.addWidget(row)
    assert row.mode == "random"
    first, second = row.next_seed(), row.next_seed()
    assert first != second
    row.set_mode("fixed")
    row.spin.setValue(77)
    assert row.next_seed() == 77 and row.next_seed() == 77
    assert row.restore(123) and row.seed() == 123
    row.set_mode("lock")
    assert not row.restore(5) and row.seed() == 123
    assert row.spin.isReadOnly()
    row.spin.setValue(4294967295)
    assert row.seed() == 4294967295


def test_panel_switches_action_forms_and_emits_runs(qtbot):
    manifest = Manifest.from_dict({
        "id": "t.p", "name": "Test", "family": "t", "modality": "image", "version": "1",
        "actions": [
            {"id": "generate", "verb": "generate", "entry": "m:f", "params": [{"name": "count", "type": "int", "default": 2, "min": 1, "max": 9}]},
            {"id": "train", "verb": "train", "entry": "m:t", "needs_model": False,
             "params": [{"name": "epochs", "type": "int", "default": 1, "min": 1, "max": 5}]},
        ],
    })
    panel = ParamsPanel()
    qtbot.addWidget(panel)
    panel.set_target(manifest, None)
    assert panel.action.id == "generate"
    assert not panel.run_button.isEnabled()  # generate needs a checkpoint
    assert panel.select_action("train")
    assert list(panel.form.fields) == ["epochs"]
    assert panel.run_button.isEnabled() and panel.run_button.text() == "Train"
    panel.form.fields["epochs"].spin.setValue(4)
    with qtbot.waitSignal(panel.runRequested) as signal:
        panel.run_button.click()
    action_id, params, seed = signal.args
    assert action_id == "train" and params == {"epochs": 4} and isinstance(seed, int)
    panel.set_target(manifest, "ckpt")
    assert panel.action.id == "train"  # the chosen action survives a model change
    panel.select_action("generate")
    assert list(panel.form.fields) == ["count"]
    visible = [w for w in panel.form.findChildren(QSpinBox) if w.isVisibleTo(panel)]
    assert len(visible) == 1
    panel.set_target(manifest, None, unavailable="broken on purpose")
    assert not panel.run_button.isEnabled() and panel.subtitle.text() == "broken on purpose"


def test_float_fields_fit_learning_rates_decays_and_optional_values(qtbot):
    form = ParamsForm()
    qtbot.addWidget(form)
    form.set_params(ParamSet((
        Param("lr", "float", 0.0002, min=0.0, max=1.0),
        Param("ema", "float", 0.995, min=0.0, max=0.99999),
        Param("cursor", "float", min=0.0),
    )))
    lr, ema, cursor = form.fields["lr"], form.fields["ema"], form.fields["cursor"]
    assert lr.value() == 0.0002 and lr.slider is None  # a slider over [0, 1] cannot reach 2e-4
    assert lr.spin.singleStep() == pytest.approx(0.0001)
    ema.set_value(0.99999)
    assert ema.value() == 0.99999 and ema.slider is not None
    assert cursor.value() is None and cursor.spin.text() == "auto"
    cursor.set_value(1.25)
    assert form.validated() == {"lr": 0.0002, "ema": 0.99999, "cursor": 1.25}


def test_int_values_named_by_the_checkpoint_show_as_a_list(qtbot):
    manifest = Manifest.from_dict({
        "id": "t.p", "name": "Test", "family": "t", "modality": "image", "version": "1",
        "actions": [{"id": "generate", "verb": "generate", "entry": "m:f", "params": [
            {"name": "class_index", "type": "int", "default": -1, "min": -1, "max": 99, "labels": "model.class_names"},
            {"name": "count", "type": "int", "default": 2, "min": 1, "max": 9}]}],
    })
    panel = ParamsPanel()
    qtbot.addWidget(panel)
    panel.set_target(manifest, "flags-model", config={"model": {"class_names": ["flags", "food", "faces"]}})
    field = panel.form.fields["class_index"]
    assert field.names.isVisibleTo(field) and not field.spin.isVisibleTo(field)
    assert [field.names.itemText(i) for i in range(field.names.count())] == ["auto", "0: flags", "1: food", "2: faces"]
    assert field.names.currentText() == "auto" and field.value() == -1
    field.names.setCurrentIndex(2)
    assert panel.form.validated()["class_index"] == 1
    panel.form.set_values({"class_index": 2})
    assert field.names.currentText() == "2: faces"
    assert not panel.form.fields["count"].names.isVisibleTo(panel.form.fields["count"])

    panel.set_target(manifest, "plain-model", config={"model": {}})  # a model without names: the spin box
    field = panel.form.fields["class_index"]
    assert field.spin.isVisibleTo(field) and not field.names.isVisibleTo(field) and field.value() == 2
