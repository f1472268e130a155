"""Tools > Preferences: the compute device and the enabled third-party plugins.

Which devices exist is only known once torch is imported, so that check runs on a worker
thread and the choices fill in when it answers.
"""

from __future__ import annotations

import contextlib
import sys
import threading

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from studio.core.engine import available_devices
from studio.core.registry import Registry
from studio.qt.dialogs import PluginList

DEVICES = {
    "auto": "Automatic (CUDA, then Apple MPS, then CPU)",
    "cpu": "CPU",
    "cuda": "NVIDIA CUDA",
    "mps": "Apple MPS",
}


class _DeviceProbe(QObject):
    found = Signal(object)  # list of device names

    def start(self) -> None:
        if "torch" in sys.modules:
            self.found.emit(available_devices())
            return
        threading.Thread(target=self._probe, name="device-probe", daemon=True).start()

    def _probe(self) -> None:
        devices = available_devices()
        with contextlib.suppress(RuntimeError):  # the dialog was closed and deleted first
            self.found.emit(devices)


class PreferencesDialog(QDialog):
    def __init__(self, device: str, registry: Registry, enabled: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.resize(600, 440)
        self.device_combo = QComboBox()
        for key, label in DEVICES.items():
            self.device_combo.addItem(label, key)
        self.device_combo.setCurrentIndex(max(self.device_combo.findData(device), 0))
        self.device_note = QLabel("Checking which devices this machine has…")
        self.device_note.setObjectName("hint")
        self.device_note.setWordWrap(True)
        device_box = QGroupBox("Compute")
        form = QFormLayout(device_box)
        form.addRow("Device", self.device_combo)
        form.addRow("", self.device_note)
        plugin_box = QGroupBox("Plugins (tick a third-party plugin to enable it; no restart needed)")
        self.plugins = PluginList(registry, enabled)
        plugin_layout = QVBoxLayout(plugin_box)
        plugin_layout.addWidget(self.plugins)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.setSpacing(12)
        layout.addWidget(device_box)
        layout.addWidget(plugin_box, 1)
        layout.addWidget(buttons)
        self._probe = _DeviceProbe(self)
        self._probe.found.connect(self.set_available)
        self._probe.start()

    def set_available(self, devices: list[str]) -> None:
        model = self.device_combo.model()
        for index in range(self.device_combo.count()):
            key = self.device_combo.itemData(index)
            usable = key == "auto" or key in devices
            model.item(index).setEnabled(usable)
            if not usable:
                self.device_combo.setItemText(index, f"{DEVICES[key]} (not available)")
        self.device_note.setText(f"Available here: {', '.join(d.upper() for d in devices)}. Applies to the next job.")

    def device(self) -> str:
        return str(self.device_combo.currentData())

    def enabled_ids(self) -> list[str]:
        return self.plugins.enabled_ids()
