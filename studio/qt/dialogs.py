"""Dialogs: readable errors with a details expander, the OOM retry offer, the plugin manager,
and the bar that offers to restore the parameters a dropped file carries."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QStyle,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.core.registry import Registry


class ErrorDialog(QDialog):
    """One readable sentence; the technical report only when asked for."""

    def __init__(self, title: str, message: str, details: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setMinimumWidth(460)
        icon = QLabel()
        icon.setPixmap(self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning).pixmap(40, 40))
        icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.message = QLabel(message[:1].upper() + message[1:])
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details = QPlainTextEdit(details)
        self.details.setReadOnly(True)
        self.details.setObjectName("details")
        self.details.setMinimumHeight(220)
        self.details.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.details.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.buttons.rejected.connect(self.reject)
        self.buttons.accepted.connect(self.accept)
        self.details_button: QPushButton | None = None
        if details:
            self.details_button = self.buttons.addButton("Show details", QDialogButtonBox.ButtonRole.ActionRole)
            self.details_button.setCheckable(True)
            self.details_button.toggled.connect(self._toggle_details)
            copy = self.buttons.addButton("Copy report", QDialogButtonBox.ButtonRole.ActionRole)
            copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(f"{message}\n\n{details}"))
        top = QHBoxLayout()
        top.setSpacing(14)
        top.addWidget(icon)
        top.addWidget(self.message, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 18, 18, 14)
        layout.setSpacing(12)
        layout.addLayout(top)
        layout.addWidget(self.details, 1)
        layout.addWidget(self.buttons)

    def _toggle_details(self, on: bool) -> None:
        self.details.setVisible(on)
        if self.details_button is not None:
            self.details_button.setText("Hide details" if on else "Show details")
        self.adjustSize()


class OomDialog(ErrorDialog):
    """The GPU ran out of memory: say so, and offer to run the same job on the CPU."""

    retryRequested = Signal()

    def __init__(self, message: str, details: str = "", parent: QWidget | None = None) -> None:
        super().__init__("Out of memory", message, details, parent)
        retry = self.buttons.addButton("Retry on CPU", QDialogButtonBox.ButtonRole.AcceptRole)
        retry.setDefault(True)
        retry.setObjectName("runButton")
        retry.clicked.connect(self.retryRequested)


class PluginList(QTreeWidget):
    """Every discovered plugin with its source and state; third-party ones can be ticked on."""

    def __init__(self, registry: Registry, enabled: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderLabels(["Plugin", "Version", "Source", "State"])
        self.setRootIsDecorated(False)
        self.setAlternatingRowColors(True)
        for _key, info in sorted(registry.plugins.items()):
            manifest = info.manifest
            state = "error" if info.error else "on" if info.enabled else "off"
            item = QTreeWidgetItem([
                manifest.name if manifest else info.package,
                manifest.version if manifest else "",
                "built-in" if info.builtin else info.source,
                state if not info.error else "disabled: error",
            ])
            item.setData(0, Qt.ItemDataRole.UserRole, info.id)
            item.setToolTip(0, info.error or (manifest.description if manifest else ""))
            item.setToolTip(3, info.error)
            if info.builtin:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsUserCheckable)
            else:
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(0, Qt.CheckState.Checked if info.id in enabled else Qt.CheckState.Unchecked)
            self.addTopLevelItem(item)
        for column in range(4):
            self.resizeColumnToContents(column)

    def enabled_ids(self) -> list[str]:
        ids = []
        for index in range(self.topLevelItemCount()):
            item = self.topLevelItem(index)
            if item.flags() & Qt.ItemFlag.ItemIsUserCheckable and item.checkState(0) == Qt.CheckState.Checked:
                ids.append(item.data(0, Qt.ItemDataRole.UserRole))
        return ids


class PluginManagerDialog(QDialog):
    """Tools > Plugins: turn third-party plugins on or off (they start off)."""

    def __init__(self, registry: Registry, enabled: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Plugins")
        self.resize(620, 360)
        note = QLabel(
            "Built-in plugins are always on. Third-party plugins run code on your machine: "
            "turn on only those you trust. Plugins with errors stay off."
        )
        note.setWordWrap(True)
        note.setObjectName("hint")
        if registry.safe_mode:
            note.setText(note.text() + " Safe mode is on: third-party plugins were not loaded.")
        self.plugins = PluginList(registry, enabled)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addWidget(self.plugins, 1)
        layout.addWidget(buttons)

    def enabled_ids(self) -> list[str]:
        return self.plugins.enabled_ids()


class RestoreBar(QFrame):
    """A slim bar over the workspace: 'this file carries parameters: restore them?'"""

    restoreRequested = Signal(object)  # the metadata dict

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("restoreBar")
        self.meta: dict[str, Any] = {}
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.restore_button = QPushButton("Restore parameters")
        self.restore_button.setObjectName("runButton")
        self.restore_button.clicked.connect(self._restore)
        dismiss = QPushButton("Dismiss")
        dismiss.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 6, 8, 6)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.restore_button)
        layout.addWidget(dismiss)
        self.hide()

    def offer(self, meta: dict[str, Any], source: str) -> None:
        self.meta = meta
        what = " · ".join(str(p) for p in (meta.get("action"), meta.get("model_id") or meta.get("plugin")) if p)
        self.label.setText(
            f"<b>{html.escape(source)}</b> carries Studio parameters ({html.escape(what)}, seed {meta.get('seed')})."
        )
        self.show()

    def _restore(self) -> None:
        self.hide()
        self.restoreRequested.emit(self.meta)
