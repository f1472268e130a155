"""Small dialogs of the waveform editor: export settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QWidget,
)

EXPORT_RATES = (16000, 44100, 48000)
EXPORT_DEPTHS = {"wav": ("16", "24", "float"), "flac": ("16", "24")}
DEPTH_LABELS = {"16": "16-bit integer", "24": "24-bit integer", "float": "32-bit float"}


@dataclass(frozen=True)
class ExportSettings:
    path: Path
    subtype: str  # "16", "24" or "float", as studio.core.media.save_audio takes it
    rate: int


class ExportDialog(QDialog):
    """Format (WAV/FLAC), bit depth (16/24/float, float for WAV only), rate and file name."""

    def __init__(self, source_rate: int, suggested: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export audio")
        self.format = QComboBox()
        self.format.addItem("WAV", "wav")
        self.format.addItem("FLAC", "flac")
        self.depth = QComboBox()
        self.rate = QComboBox()
        for rate in EXPORT_RATES:
            self.rate.addItem(f"{rate / 1000:g} kHz" + (" (source)" if rate == source_rate else ""), rate)
        closest = min(EXPORT_RATES, key=lambda r: (abs(r - source_rate), -r))
        self.rate.setCurrentIndex(EXPORT_RATES.index(closest))
        self.path = QLineEdit(str(suggested.with_suffix(".wav")))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Format", self.format)
        form.addRow("Sample format", self.depth)
        form.addRow("Sample rate", self.rate)
        form.addRow("File", row)
        form.addRow(buttons)
        self.format.currentIndexChanged.connect(self._format_changed)
        self._format_changed()

    def _format_changed(self) -> None:
        kind = self.format.currentData()
        current = self.depth.currentData() or "16"
        self.depth.clear()
        for depth in EXPORT_DEPTHS[kind]:
            self.depth.addItem(DEPTH_LABELS[depth], depth)
        self.depth.setCurrentIndex(max(0, self.depth.findData(current)))
        self.path.setText(str(Path(self.path.text()).with_suffix("." + kind)))

    def _browse(self) -> None:
        kind = self.format.currentData()
        name, _ = QFileDialog.getSaveFileName(self, "Export audio", self.path.text(), f"{kind.upper()} (*.{kind})")
        if name:
            self.path.setText(str(Path(name).with_suffix("." + kind)))

    def settings(self) -> ExportSettings:
        return ExportSettings(Path(self.path.text()), self.depth.currentData(), int(self.rate.currentData()))
