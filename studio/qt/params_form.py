"""The parameters dock: action tabs, a form generated from the action's ParamSet, seed, Run.

Every Param type maps to one field widget with ``value()`` / ``set_value()``. Validation
errors from the spec are shown inline under the form and on the offending field.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QStyle,
    QTabBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.engine import MAX_SEED
from studio.core.media import AUDIO_SUFFIXES, IMAGE_SUFFIXES
from studio.core.params import Param, ParamError, ParamSet
from studio.core.plugin import ActionSpec, Manifest

INT32_MAX = 2**31 - 1
CanvasProvider = Callable[[str], "Path | None"]  # parameter name -> the canvas image (or mask) as a file


# fields ---------------------------------------------------------------------------------------
class Field(QWidget):
    """One parameter's editor. ``editor`` is the widget that gets the error outline."""

    changed = Signal()

    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.param = param
        self.editor: QWidget = self
        self.setToolTip(param.help)

    def value(self) -> Any:
        raise NotImplementedError

    def set_value(self, value: Any) -> None:
        raise NotImplementedError

    def set_error(self, on: bool) -> None:
        self.editor.setProperty("invalid", on)
        self.editor.style().unpolish(self.editor)
        self.editor.style().polish(self.editor)


def _row(*widgets: QWidget) -> QHBoxLayout:
    layout = QHBoxLayout()
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(6)
    for widget in widgets:
        layout.addWidget(widget)
    return layout


class IntField(Field):
    """A spin box; a parameter without a default gets an extra 'auto' step below its minimum.
    With value names from the model (``set_names``) a list of the names stands in for it."""

    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(param, parent)
        low = -INT32_MAX if param.min is None else int(param.min)
        high = INT32_MAX if param.max is None else int(param.max)
        self.optional = param.default is None and not param.required
        if self.optional:
            low -= 1
        wide = high > INT32_MAX or low < -INT32_MAX
        self.spin: QSpinBox | QDoubleSpinBox = QDoubleSpinBox() if wide else QSpinBox()
        if wide:
            self.spin.setDecimals(0)
        self.spin.setRange(low, high)
        if param.step:
            self.spin.setSingleStep(max(1, int(param.step)))
        if self.optional:
            self.spin.setSpecialValueText("auto")
        self.spin.setToolTip(param.help)
        self.spin.setAccelerated(True)
        self.spin.valueChanged.connect(self.changed)
        self.spin.valueChanged.connect(self._show_name)
        self.names = QComboBox()
        self.names.setToolTip(param.help)
        self.names.currentIndexChanged.connect(lambda _: self.spin.setValue(self.names.currentData()))
        self.names.hide()
        self.editor = self.spin
        self.setLayout(_row(self.spin, self.names))
        self.set_value(param.default)

    def set_names(self, names: list[str]) -> None:
        """Offer the values by name (index i is ``names[i]``; values below 0 read "auto")."""
        with QSignalBlocker(self.names):
            self.names.clear()
            if self.spin.minimum() < 0:
                self.names.addItem("auto", -1)
            for index, name in enumerate(names[: int(self.spin.maximum()) + 1]):
                self.names.addItem(f"{index}: {name}", index)
        self.names.setVisible(bool(names))
        self.spin.setVisible(not names)
        self.editor = self.names if names else self.spin
        self._show_name(self.spin.value())

    def _show_name(self, value: float) -> None:
        index = self.names.findData(int(value) if value >= 0 else -1)
        if index >= 0:
            with QSignalBlocker(self.names):
                self.names.setCurrentIndex(index)

    def value(self) -> int | None:
        if self.optional and self.spin.value() == self.spin.minimum():
            return None
        return int(self.spin.value())

    def set_value(self, value: Any) -> None:
        if value is None:
            self.spin.setValue(self.spin.minimum() if self.optional else max(0, self.spin.minimum()))
        else:
            self.spin.setValue(int(value))


class FloatField(Field):
    """A slider beside a spin box when the range is bounded and on the scale of the default,
    else a spin box alone; a parameter without a default gets an 'auto' step below its range."""

    SLIDER_STEPS = 1000

    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(param, parent)
        self.spin = QDoubleSpinBox()
        step = param.step or _nice_step(param)
        self.low = -1e12 if param.min is None else float(param.min)
        self.high = 1e12 if param.max is None else float(param.max)
        self.optional = param.default is None and not param.required
        self.spin.setDecimals(_decimals(param, step))
        self.spin.setRange(self.low - step if self.optional else self.low, self.high)
        if self.optional:
            self.spin.setSpecialValueText("auto")
        self.spin.setSingleStep(step)
        self.spin.setToolTip(param.help)
        self.spin.setFixedWidth(92)
        self.editor = self.spin
        self.slider: QSlider | None = None
        widgets: list[QWidget] = [self.spin]
        if _wants_slider(param):
            self.slider = QSlider(Qt.Orientation.Horizontal)
            self.slider.setRange(0, self.SLIDER_STEPS)
            self.slider.setToolTip(param.help)
            self.slider.valueChanged.connect(self._slider_moved)
            widgets.insert(0, self.slider)
        self.spin.valueChanged.connect(self._spin_changed)
        self.setLayout(_row(*widgets))
        self.set_value(param.default)

    def _slider_moved(self, position: int) -> None:
        with QSignalBlocker(self.spin):
            self.spin.setValue(self.low + (self.high - self.low) * position / self.SLIDER_STEPS)
        self.changed.emit()

    def _spin_changed(self, value: float) -> None:
        if self.slider is not None:
            fraction = (min(max(value, self.low), self.high) - self.low) / (self.high - self.low)
            with QSignalBlocker(self.slider):
                self.slider.setValue(round(fraction * self.SLIDER_STEPS))
        self.changed.emit()

    def value(self) -> float | None:
        if self.optional and self.spin.value() == self.spin.minimum():
            return None
        return round(float(self.spin.value()), self.spin.decimals())

    def set_value(self, value: Any) -> None:
        if value is None:
            self.spin.setValue(self.spin.minimum() if self.optional else max(self.low, min(0.0, self.high)))
        else:
            self.spin.setValue(float(value))
        self._spin_changed(self.spin.value())


def _nice_step(param: Param) -> float:
    """A power of ten: a hundredth of the range, or finer when the default is smaller still."""
    step = 0.1
    if param.min is not None and param.max is not None and param.max > param.min:
        step = 10 ** math.floor(math.log10((param.max - param.min) / 100))
    if isinstance(param.default, (int, float)) and param.default:
        step = min(step, 10 ** math.floor(math.log10(abs(param.default))))
    return step


def _decimals(param: Param, step: float) -> int:
    """Enough decimals to show the step, the default and the bounds exactly (2 to 8)."""
    needed = 2
    for value in (step, param.default, param.min, param.max):
        if isinstance(value, (int, float)) and value:
            fraction = f"{abs(value):.10f}".rstrip("0").partition(".")[2]
            needed = max(needed, len(fraction))
    return min(needed, 8)


def _wants_slider(param: Param) -> bool:
    """A slider helps on a bounded range unless the default is a speck of it (learning rates)."""
    if param.min is None or param.max is None or param.max <= param.min:
        return False
    span = param.max - param.min
    return not (isinstance(param.default, (int, float)) and param.default and span / abs(param.default) > 1000)


class BoolField(Field):
    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(param, parent)
        self.check = QCheckBox()
        self.check.setToolTip(param.help)
        self.check.toggled.connect(self.changed)
        self.editor = self.check
        self.setLayout(_row(self.check))
        self.set_value(param.default)

    def value(self) -> bool:
        return self.check.isChecked()

    def set_value(self, value: Any) -> None:
        self.check.setChecked(bool(value) and str(value).lower() not in ("0", "false", "no", "off"))


class ChoiceField(Field):
    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(param, parent)
        self.combo = QComboBox()
        self.combo.addItems(list(param.choices))
        self.combo.setToolTip(param.help)
        self.combo.currentIndexChanged.connect(self.changed)
        self.editor = self.combo
        self.setLayout(_row(self.combo))
        self.set_value(param.default)

    def value(self) -> str:
        return self.combo.currentText()

    def set_value(self, value: Any) -> None:
        index = self.combo.findText(str(value)) if value is not None else 0
        self.combo.setCurrentIndex(max(index, 0))


class StrField(Field):
    def __init__(self, param: Param, parent: QWidget | None = None) -> None:
        super().__init__(param, parent)
        if param.multiline:
            self.text: QLineEdit | QPlainTextEdit = QPlainTextEdit()
            self.text.setFixedHeight(72)
            self.text.textChanged.connect(self.changed)
        else:
            self.text = QLineEdit()
            self.text.textChanged.connect(self.changed)
        self.text.setToolTip(param.help)
        self.editor = self.text
        self.setLayout(_row(self.text))
        self.set_value(param.default)

    def value(self) -> str:
        return self.text.toPlainText() if isinstance(self.text, QPlainTextEdit) else self.text.text()

    def set_value(self, value: Any) -> None:
        text = "" if value is None else str(value)
        if isinstance(self.text, QPlainTextEdit):
            self.text.setPlainText(text)
        else:
            self.text.setText(text)


class FileField(Field):
    """A path with a browse button; image inputs can instead take the current canvas image."""


    def __init__(self, param: Param, canvas_provider: CanvasProvider | None, parent: QWidget | None = None) -> None:
        super().__init__(param, parent)
        self.canvas_provider = canvas_provider
        self.line = QLineEdit()
        self.line.setPlaceholderText("optional" if not param.required else "required")
        self.line.setToolTip(param.help)
        self.line.setClearButtonEnabled(True)
        self.line.textChanged.connect(self.changed)
        self.editor = self.line
        browse = QToolButton()
        browse.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_DirOpenIcon))
        browse.setToolTip("Choose a file")
        if param.type == "path":
            menu = QMenu(browse)
            menu.addAction("Choose a file…", self._choose_file)
            menu.addAction("Choose a folder…", self._choose_folder)
            browse.setMenu(menu)
            browse.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
            browse.setToolTip("Choose a file or a folder")
        else:
            browse.clicked.connect(self._choose_file)
        widgets: list[QWidget] = [self.line, browse]
        self.canvas_button: QToolButton | None = None
        if param.type == "image" and canvas_provider is not None:
            self.canvas_button = QToolButton()
            self.canvas_button.setText("Canvas")
            self.canvas_button.setCheckable(True)
            self.canvas_button.setToolTip(f"Use the {self.canvas_part} on the canvas when the action runs")
            self.canvas_button.toggled.connect(self._canvas_toggled)
            widgets.append(self.canvas_button)
        self.setLayout(_row(*widgets))
        self.set_value(param.default)

    @property
    def is_mask(self) -> bool:
        return "mask" in self.param.name

    @property
    def canvas_part(self) -> str:
        """What the canvas supplies: the painted mask for mask inputs, else the image."""
        return "mask" if self.is_mask else "image"

    @property
    def uses_canvas(self) -> bool:
        return self.canvas_button is not None and self.canvas_button.isChecked()

    def _canvas_toggled(self, on: bool) -> None:
        self.line.setEnabled(not on)
        with QSignalBlocker(self.line):
            self.line.setText(f"the canvas {self.canvas_part}" if on else "")
        self.changed.emit()

    def _filter(self) -> str:
        if self.param.type == "image":
            return "Images (" + " ".join(f"*{s}" for s in IMAGE_SUFFIXES) + ");;All files (*)"
        if self.param.type == "audio":
            return "Audio (" + " ".join(f"*{s}" for s in AUDIO_SUFFIXES) + ");;All files (*)"
        return "All files (*)"

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, self.param.title, self.line.text(), self._filter())
        if path:
            self.set_value(path)

    def _choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, self.param.title, self.line.text())
        if path:
            self.set_value(path)

    def value(self) -> str | None:
        if self.uses_canvas:
            provided = self.canvas_provider(self.param.name) if self.canvas_provider else None
            if provided is None:
                raise ParamError(f"{self.param.name}: the canvas holds no {self.canvas_part}")
            return str(provided)
        text = self.line.text().strip()
        return text or None

    def set_value(self, value: Any) -> None:
        if self.canvas_button is not None:
            self.canvas_button.setChecked(False)
        self.line.setText("" if value is None or str(value).startswith("<array") else str(value))


def make_field(param: Param, canvas_provider: CanvasProvider | None = None) -> Field:
    if param.type == "int":
        return IntField(param)
    if param.type == "float":
        return FloatField(param)
    if param.type == "bool":
        return BoolField(param)
    if param.type == "choice":
        return ChoiceField(param)
    if param.type == "str":
        return StrField(param)
    return FileField(param, canvas_provider)


# the form -------------------------------------------------------------------------------------
class ParamsForm(QWidget):
    """A form for one ParamSet; advanced parameters fold away under a toggle."""

    changed = Signal()

    def __init__(self, canvas_provider: CanvasProvider | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.canvas_provider = canvas_provider
        self.fields: dict[str, Field] = {}
        self.params = ParamSet()
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._body: QWidget | None = None
        self.model_config: dict[str, Any] = {}

    def set_model_config(self, config: dict[str, Any]) -> None:
        """The selected checkpoint's config: int fields with ``labels`` list its names for their values."""
        self.model_config = config
        for name, field in self.fields.items():
            param = self.params.get(name)
            if isinstance(field, IntField) and param is not None and param.labels:
                field.set_names(param.value_names(config))

    def set_params(self, params: ParamSet) -> None:
        self.params = params
        self.fields = {}
        if self._body is not None:
            self._body.hide()
            self._layout.removeWidget(self._body)
            self._body.deleteLater()
        self._body = QWidget(self)
        body = QVBoxLayout(self._body)
        body.setContentsMargins(0, 0, 0, 0)
        basic, advanced = _form(), _form()
        for param in params:
            field = make_field(param, self.canvas_provider)
            field.changed.connect(self.changed)
            self.fields[param.name] = field
            if isinstance(field, IntField) and param.labels:
                field.set_names(param.value_names(self.model_config))
            label = QLabel(param.title + ("  *" if param.required else ""))
            label.setToolTip(param.help)
            label.setBuddy(field.editor)
            (advanced if param.advanced else basic).addRow(label, field)
        if not len(params):
            note = QLabel("This action has no parameters.")
            note.setObjectName("hint")
            body.addWidget(note)
        body.addLayout(basic)
        if advanced.rowCount():
            toggle = QToolButton()
            toggle.setText("Advanced")
            toggle.setCheckable(True)
            toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            toggle.setArrowType(Qt.ArrowType.RightArrow)
            toggle.setObjectName("foldToggle")
            holder = QWidget()
            holder.setLayout(advanced)
            holder.setVisible(False)

            def fold(on: bool) -> None:
                holder.setVisible(on)
                toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)

            toggle.toggled.connect(fold)
            body.addWidget(toggle)
            body.addWidget(holder)
        self._layout.addWidget(self._body)

    def values(self) -> dict[str, Any]:
        """Raw values from the fields (ParamError if a canvas input has no image)."""
        return {name: field.value() for name, field in self.fields.items()}

    def validated(self) -> dict[str, Any]:
        """Values checked against the specs; marks the offending field before re-raising."""
        self.clear_errors()
        try:
            values = self.values()
            return self.params.validate(values)
        except ParamError as exc:
            name = str(exc).split(" ", 1)[0].rstrip(":")
            if name in self.fields:
                self.fields[name].set_error(True)
            raise

    def set_values(self, values: dict[str, Any]) -> list[str]:
        """Fill the fields it knows; returns the names it could not use."""
        unused = []
        for name, value in values.items():
            field = self.fields.get(name)
            if field is None:
                unused.append(name)
                continue
            try:
                field.set_value(value)
            except (TypeError, ValueError):
                unused.append(name)
        return unused

    def reset(self) -> None:
        self.set_values(self.params.defaults())

    def clear_errors(self) -> None:
        for field in self.fields.values():
            field.set_error(False)


def _form() -> QFormLayout:
    form = QFormLayout()
    form.setContentsMargins(0, 0, 0, 0)
    form.setHorizontalSpacing(10)
    form.setVerticalSpacing(8)
    form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    return form


# seed -----------------------------------------------------------------------------------------
class SeedRow(QWidget):
    """Random: a new seed every run. Fixed: the seed in the box. Lock: the box's seed, kept even
    when parameters are reused or restored from a file."""

    MODES = ("random", "fixed", "lock")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spin = QDoubleSpinBox()
        self.spin.setDecimals(0)
        self.spin.setRange(0, MAX_SEED)
        self.spin.setToolTip("The seed of the next run (the last one used, in Random mode)")
        self.spin.setMinimumWidth(110)
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        layout = _row(self.spin)
        layout.setSpacing(0)
        layout.addSpacing(6)
        tips = {
            "random": "Draw a new seed for every run",
            "fixed": "Run with the seed in the box",
            "lock": "Keep this seed, even when reusing parameters from a result or a file",
        }
        self.buttons: dict[str, QToolButton] = {}
        for i, mode in enumerate(self.MODES):
            button = QToolButton()
            button.setText(mode.capitalize())
            button.setCheckable(True)
            button.setToolTip(tips[mode])
            button.setObjectName("segment")
            button.setProperty("position", ("first", "middle", "last")[i])
            self.group.addButton(button, i)
            self.buttons[mode] = button
            layout.addWidget(button)
        self.group.idToggled.connect(self._mode_toggled)
        self.setLayout(layout)
        self.set_mode("random")
        self.spin.setValue(random.randrange(MAX_SEED))

    @property
    def mode(self) -> str:
        return self.MODES[max(self.group.checkedId(), 0)]

    def set_mode(self, mode: str) -> None:
        self.buttons[mode].setChecked(True)
        self._mode_toggled(self.MODES.index(mode), True)

    def _mode_toggled(self, index: int, on: bool) -> None:
        if on:
            self.spin.setReadOnly(self.MODES[index] != "fixed")

    def seed(self) -> int:
        return int(self.spin.value())

    def next_seed(self) -> int:
        """The seed for a run about to start (draws one in Random mode and shows it)."""
        if self.mode == "random":
            self.spin.setValue(random.randrange(MAX_SEED))
        return self.seed()

    def restore(self, seed: int | None) -> bool:
        """Take a reused seed unless locked; returns whether it was taken."""
        if self.mode == "lock" or seed is None:
            return False
        self.spin.setValue(int(seed))
        self.set_mode("fixed")
        return True


# the panel ------------------------------------------------------------------------------------
class ParamsPanel(QWidget):
    """Everything in the Parameters dock. ``runRequested(action_id, params, seed)`` on Run."""

    runRequested = Signal(str, object, object)  # action id, params dict, seed (may exceed int32)
    actionChanged = Signal(str)

    def __init__(self, canvas_provider: CanvasProvider | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.manifest: Manifest | None = None
        self.model_id: str | None = None
        self.action: ActionSpec | None = None
        self.unavailable = ""

        self.title = QLabel("No model selected")
        self.title.setObjectName("panelTitle")
        self.subtitle = QLabel("Pick a model in the Models panel.")
        self.subtitle.setObjectName("hint")
        self.subtitle.setWordWrap(True)
        self.tabs = QTabBar()
        self.tabs.setExpanding(False)
        self.tabs.setUsesScrollButtons(True)
        self.tabs.setDrawBase(False)
        self.tabs.currentChanged.connect(self._tab_changed)
        self.help = QLabel()
        self.help.setObjectName("hint")
        self.help.setWordWrap(True)
        self.form = ParamsForm(canvas_provider)
        self.form.changed.connect(self._clear_error)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        inner = QWidget()
        inner_layout = QVBoxLayout(inner)
        inner_layout.setContentsMargins(0, 4, 4, 4)
        inner_layout.addWidget(self.help)
        inner_layout.addWidget(self.form)
        inner_layout.addStretch(1)
        scroll.setWidget(inner)

        self.seed = SeedRow()
        seed_form = _form()
        seed_label = QLabel("Seed")
        seed_label.setToolTip("The random seed: the same seed on the CPU reproduces a result exactly")
        seed_form.addRow(seed_label, self.seed)
        self.seed_box = QWidget()
        self.seed_box.setLayout(seed_form)

        self.error = QLabel()
        self.error.setObjectName("error")
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error.hide()
        self.reset_button = QToolButton()
        self.reset_button.setText("Defaults")
        self.reset_button.setToolTip("Reset every parameter to its default")
        self.reset_button.clicked.connect(self.form.reset)
        self.run_button = QPushButton("Run")
        self.run_button.setObjectName("runButton")
        self.run_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        self.run_button.setToolTip("Run the action (Ctrl+Return)")
        self.run_button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.run_button.clicked.connect(self.run)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 10)
        layout.setSpacing(6)
        layout.addWidget(self.title)
        layout.addWidget(self.subtitle)
        layout.addWidget(self.tabs)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.seed_box)
        layout.addWidget(self.error)
        buttons = QHBoxLayout()
        buttons.addWidget(self.reset_button)
        buttons.addWidget(self.run_button, 1)
        layout.addLayout(buttons)
        self._refresh_enabled()

    # selection ----------------------------------------------------------------------------------
    def set_target(self, manifest: Manifest | None, model_id: str | None, unavailable: str = "",
                   config: dict[str, Any] | None = None) -> None:
        """Show the actions of ``manifest`` for checkpoint ``model_id`` (whose ``config`` names
        class and instrument values); keeps the action if it can."""
        previous = self.action.id if self.action else None
        self.form.set_model_config(config or {})
        same_plugin = self.manifest is not None and manifest is not None and manifest.id == self.manifest.id
        self.manifest, self.model_id, self.unavailable = manifest, model_id, unavailable
        if manifest is None:
            self.title.setText("No model selected")
            self.subtitle.setText(unavailable or "Pick a model in the Models panel.")
        else:
            self.title.setText(manifest.name)
            self.subtitle.setText(unavailable or (model_id or "no checkpoint (actions that need one are off)"))
        if not same_plugin:
            with QSignalBlocker(self.tabs):
                while self.tabs.count():
                    self.tabs.removeTab(0)
                for action in manifest.actions if manifest else ():
                    index = self.tabs.addTab(action.title)
                    self.tabs.setTabToolTip(index, action.help)
                    self.tabs.setTabData(index, action.id)
            ids = [a.id for a in manifest.actions] if manifest else []
            self._select(ids.index(previous) if previous in ids else 0)
        self._refresh_enabled()

    def select_action(self, action_id: str) -> bool:
        for index in range(self.tabs.count()):
            if self.tabs.tabData(index) == action_id:
                self.tabs.setCurrentIndex(index)
                self._select(index)
                return True
        return False

    def _tab_changed(self, index: int) -> None:
        self._select(index)

    def _select(self, index: int) -> None:
        if self.manifest is None or index < 0:
            self.action = None
            self.form.set_params(ParamSet())
            self.help.setText("")
        else:
            with QSignalBlocker(self.tabs):
                self.tabs.setCurrentIndex(index)
            action = self.manifest.actions[index]
            if self.action is not action:
                self.action = action
                self.form.set_params(action.params)
            self.help.setText(action.help)
            self.actionChanged.emit(action.id)
        self._clear_error()
        self._refresh_enabled()

    def _refresh_enabled(self) -> None:
        action = self.action
        ready = action is not None and not self.unavailable and (self.model_id is not None or not action.needs_model)
        self.run_button.setEnabled(ready)
        self.run_button.setText(action.title if action else "Run")
        if action is not None and action.needs_model and self.model_id is None and not self.unavailable:
            self.run_button.setToolTip(f"{action.title} needs a model: pick a checkpoint")
        else:
            self.run_button.setToolTip("Run the action (Ctrl+Return)")
        self.seed_box.setVisible(action is not None)

    # running ------------------------------------------------------------------------------------
    def run(self) -> None:
        if self.action is None or not self.run_button.isEnabled():
            return
        try:
            params = self.form.validated()
        except ParamError as exc:
            self.show_error(str(exc))
            return
        self._clear_error()
        self.runRequested.emit(self.action.id, params, self.seed.next_seed())

    def show_error(self, message: str) -> None:
        self.error.setText(message[:1].upper() + message[1:])
        self.error.show()

    def _clear_error(self) -> None:
        self.error.hide()
        self.form.clear_errors()

    def restore(self, action_id: str | None, params: dict[str, Any], seed: int | None) -> list[str]:
        """Refill from a result's metadata; returns parameter names that did not fit."""
        if action_id:
            self.select_action(action_id)
        self.form.reset()
        unused = self.form.set_values(params)
        self.seed.restore(seed)
        return unused
