"""The explorer's side panels: slider banks, variations, path and bookmarks. Widgets only; the
explorer connects their signals to its logic."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.qt.canvas_convert import qimage_from_array
from studio.qt.explorer_views import ImageGrid

ICON_SIZE = 40


def icon_from_array(image: np.ndarray) -> QIcon:
    pixmap = QPixmap.fromImage(qimage_from_array(image)).scaled(
        ICON_SIZE, ICON_SIZE, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation
    )
    return QIcon(pixmap)


class ValueSlider(QWidget):
    """A horizontal float slider with its value beside it. Plain QSlider underneath: it paints
    in C++, so dozens of them can follow the pointer every frame."""

    valueChanged = Signal(float)

    def __init__(self, minimum: float, maximum: float, value: float, decimals: int = 2,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._scale = 10**decimals
        self._decimals = decimals
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.readout = QLabel()
        self.readout.setMinimumWidth(44)
        self.readout.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.readout)
        self.setRange(minimum, maximum)
        self.slider.setValue(round(value * self._scale))
        self._show(self.slider.value())
        self.slider.valueChanged.connect(self._on_slider)

    def _show(self, steps: int) -> None:
        self.readout.setText(f"{steps / self._scale:.{self._decimals}f}")

    def _on_slider(self, steps: int) -> None:
        self._show(steps)
        if not self.signalsBlocked():
            self.valueChanged.emit(steps / self._scale)

    def setRange(self, minimum: float, maximum: float) -> None:
        self.slider.setRange(round(minimum * self._scale), round(maximum * self._scale))
        self.slider.setPageStep(max(1, round((maximum - minimum) * self._scale / 20)))

    def minimum(self) -> float:
        return self.slider.minimum() / self._scale

    def maximum(self) -> float:
        return self.slider.maximum() / self._scale

    def value(self) -> float:
        return self.slider.value() / self._scale

    def setValue(self, value: float) -> None:
        self.slider.setValue(round(float(value) * self._scale))


class SliderBank(QScrollArea):
    """A column of named sliders; ``valueChanged(index, value)`` when the user moves one."""

    valueChanged = Signal(int, float)

    def __init__(self, hint: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.hint = QLabel(hint)
        self.hint.setWordWrap(True)
        self.sliders: list[ValueSlider] = []
        self._build([], 0.0, 0.0)

    def _build(self, names: list[str], minimum: float, maximum: float) -> None:
        body = QWidget()
        layout = QGridLayout(body)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setVerticalSpacing(2)
        self.sliders = []
        for row, name in enumerate(names):
            slider = ValueSlider(minimum, maximum, 0.0)
            slider.valueChanged.connect(lambda value, index=row: self.valueChanged.emit(index, value))
            layout.addWidget(QLabel(name), row, 0)
            layout.addWidget(slider, row, 1)
            self.sliders.append(slider)
        self.hint = QLabel(self.hint.text())
        self.hint.setWordWrap(True)
        layout.addWidget(self.hint, len(names), 0, 1, 2)
        layout.setRowStretch(len(names) + 1, 1)
        self.setWidget(body)

    def set_rows(self, names: list[str], minimum: float, maximum: float, hint: str = "") -> None:
        self.hint.setText(hint)
        self._build(names, minimum, maximum)

    def set_values(self, values: np.ndarray) -> None:
        """Show values without emitting; out-of-range values sit at the ends."""
        for slider, value in zip(self.sliders, np.nan_to_num(np.asarray(values, dtype=float)).tolist()):
            slider.blockSignals(True)
            slider.setValue(min(max(value, slider.minimum()), slider.maximum()))
            slider.blockSignals(False)


class VariationsPanel(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grid = ImageGrid(3)
        self.size = QComboBox()
        for side in (3, 4, 5):
            self.size.addItem(f"{side} x {side}", side)
        self.spread = ValueSlider(0.0, 3.0, 0.6)
        self.spread.setToolTip("How far the neighbours stray, in standard deviations of the map's points")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.reseed = QPushButton("New seed")
        self.reseed.clicked.connect(lambda: self.seed.setValue((self.seed.value() * 7919 + 1) % (2**31 - 1)))
        controls = QFormLayout()
        controls.addRow("Spread", self.spread)
        row = QHBoxLayout()
        row.addWidget(self.size)
        row.addWidget(QLabel("Seed"))
        row.addWidget(self.seed)
        row.addWidget(self.reseed)
        controls.addRow("Grid", row)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.grid, 1)
        layout.addWidget(QLabel("The centre is the current point; click a neighbour to move there."))
        self.size.currentIndexChanged.connect(self.changed)
        self.spread.valueChanged.connect(self.changed)
        self.seed.valueChanged.connect(self.changed)

    @property
    def side(self) -> int:
        return int(self.size.currentData())


class PathPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.anchors = QListWidget()
        self.anchors.setIconSize(QSize(ICON_SIZE, ICON_SIZE))
        self.anchors.setFlow(QListWidget.Flow.LeftToRight)
        self.anchors.setFixedHeight(ICON_SIZE + 34)
        self.add_current = QPushButton("Add current")
        self.add_files = QPushButton("Add images…")
        self.remove = QPushButton("Remove")
        self.clear = QPushButton("Clear")
        self.steps = QSpinBox()
        self.steps.setRange(2, 256)
        self.steps.setValue(12)
        self.mode = QComboBox()
        self.mode.addItems(["slerp", "lerp"])
        self.strip = ImageGrid(12, minimum_cell=36)
        self.scrub = QSlider(Qt.Orientation.Horizontal)
        self.scrub.setRange(0, 11)
        self.scale = QSpinBox()
        self.scale.setRange(1, 16)
        self.scale.setValue(4)
        self.scale.setSuffix(" x")
        self.fps = QDoubleSpinBox()
        self.fps.setRange(1, 60)
        self.fps.setValue(12)
        self.fps.setSuffix(" fps")
        self.export_frames = QPushButton("Frames…")
        self.export_gif = QPushButton("GIF…")
        self.export_apng = QPushButton("APNG…")
        self.export_sheet = QPushButton("Contact sheet…")

        buttons = QHBoxLayout()
        for button in (self.add_current, self.add_files, self.remove, self.clear):
            buttons.addWidget(button)
        settings = QHBoxLayout()
        settings.addWidget(QLabel("Steps"))
        settings.addWidget(self.steps)
        settings.addWidget(self.mode)
        settings.addStretch(1)
        exports = QGridLayout()
        exports.addWidget(QLabel("Export"), 0, 0)
        exports.addWidget(self.scale, 0, 1)
        exports.addWidget(self.fps, 0, 2)
        for column, button in enumerate((self.export_frames, self.export_gif, self.export_apng, self.export_sheet)):
            exports.addWidget(button, 1, column)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Shift-click the map, or add points here. Two or more make a path."))
        layout.addWidget(self.anchors)
        layout.addLayout(buttons)
        layout.addLayout(settings)
        layout.addWidget(self.strip, 1)
        layout.addWidget(self.scrub)
        layout.addLayout(exports)


class BookmarksPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = QLineEdit()
        self.name.setPlaceholderText("Name this point")
        self.save = QPushButton("Save bookmark")
        self.list = QListWidget()
        self.list.setIconSize(QSize(ICON_SIZE, ICON_SIZE))
        self.restore = QPushButton("Restore")
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.name, 1)
        row.addWidget(self.save)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.restore)
        layout.addWidget(self.hint)
