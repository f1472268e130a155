"""The Models dock: plugins by modality and family, their checkpoints, and a model card view.

Only manifests and checkpoint folders are read here: no plugin code, no torch.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QTextDocument, QTextTable
from PySide6.QtWidgets import (
    QLineEdit,
    QSplitter,
    QStyle,
    QTextBrowser,
    QTreeWidget,
    QTreeWidgetItem,
    QTreeWidgetItemIterator,
    QVBoxLayout,
    QWidget,
)

from studio.core.checkpoints import Checkpoint
from studio.core.registry import PluginInfo, Registry

KIND_ROLE = Qt.ItemDataRole.UserRole
ID_ROLE = Qt.ItemDataRole.UserRole + 1
PLUGIN_ROLE = Qt.ItemDataRole.UserRole + 2
MODALITY_TITLES = {"image": "Images", "audio": "Audio", "symbolic": "Symbolic music", "text": "Text"}
UNAVAILABLE = "Unavailable"


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def plugin_problem(info: PluginInfo) -> str:
    """Why a plugin cannot run, or '' when it can."""
    if info.error:
        return info.error
    if not info.enabled:
        return "Third-party plugin, off until you enable it in Tools > Plugins."
    return ""


class ModelBrowser(QWidget):
    """``selectionChanged(plugin_id, checkpoint_id)``; either may be '' (nothing of that kind)."""

    selectionChanged = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.registry: Registry | None = None
        self.device_text = "auto"
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter models")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._apply_filter)
        self.tree = QTreeWidget()
        self.tree.setHeaderHidden(True)
        self.tree.setIndentation(14)
        self.tree.setUniformRowHeights(True)
        self.tree.setAnimated(True)
        self.tree.currentItemChanged.connect(self._current_changed)
        self.card = QTextBrowser()
        self.card.setOpenExternalLinks(True)
        self.card.setObjectName("modelCard")
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.tree)
        splitter.addWidget(self.card)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(6)
        layout.addWidget(self.filter)
        layout.addWidget(splitter, 1)

    # filling --------------------------------------------------------------------------------------
    def set_registry(self, registry: Registry) -> None:
        selected = self.selection()
        self.registry = registry
        self.tree.blockSignals(True)
        self.tree.clear()
        style = self.style()
        groups: dict[str, QTreeWidgetItem] = {}

        def group(title: str) -> QTreeWidgetItem:
            if title not in groups:
                item = QTreeWidgetItem([title])
                item.setData(0, KIND_ROLE, "group")
                item.setFlags(Qt.ItemFlag.ItemIsEnabled)
                font = item.font(0)
                font.setBold(True)
                font.setCapitalization(QFont.Capitalization.AllUppercase)
                font.setPointSizeF(font.pointSizeF() * 0.85)
                item.setFont(0, font)
                groups[title] = item
            return groups[title]

        entries = sorted(
            registry.plugins.items(),
            key=lambda kv: (kv[1].manifest is None, kv[1].manifest.modality if kv[1].manifest else "",
                            kv[1].manifest.family if kv[1].manifest else "", kv[0]),
        )
        for key, info in entries:
            problem = plugin_problem(info)
            manifest = info.manifest
            if manifest is None:
                parent = group(UNAVAILABLE)
                title = info.package
            else:
                parent = group(MODALITY_TITLES.get(manifest.modality, manifest.modality.capitalize()))
                title = f"{manifest.name}"
            item = QTreeWidgetItem(parent, [title])
            item.setData(0, KIND_ROLE, "plugin")
            item.setData(0, PLUGIN_ROLE, key)
            item.setData(0, ID_ROLE, "")
            family = manifest.family if manifest else "?"
            item.setToolTip(0, problem or f"{family} family · {len(manifest.actions)} actions")
            icon = QStyle.StandardPixmap.SP_MessageBoxWarning if problem else QStyle.StandardPixmap.SP_DirIcon
            item.setIcon(0, style.standardIcon(icon))
            item.setExpanded(True)
            for ckpt in registry.checkpoints_for(info.id) if manifest else []:
                child = QTreeWidgetItem(item, [ckpt.name])
                child.setData(0, KIND_ROLE, "checkpoint")
                child.setData(0, PLUGIN_ROLE, key)
                child.setData(0, ID_ROLE, ckpt.id)
                child.setIcon(0, style.standardIcon(QStyle.StandardPixmap.SP_FileIcon))
                child.setToolTip(0, problem or f"{ckpt.source} checkpoint · {ckpt.path}")
                if ckpt.source == "user":
                    child.setText(0, f"{ckpt.name}  (yours)")
                _grey(child, bool(problem))
            _grey(item, bool(problem))
        for title in sorted(groups, key=lambda t: t == UNAVAILABLE):
            self.tree.addTopLevelItem(groups[title])
            groups[title].setExpanded(True)
        self.tree.blockSignals(False)
        self._apply_filter(self.filter.text())
        if not self.select(*selected):
            self.select_first()

    # selection ------------------------------------------------------------------------------------
    def selection(self) -> tuple[str, str]:
        item = self.tree.currentItem()
        if item is None or item.data(0, KIND_ROLE) == "group":
            return "", ""
        return item.data(0, PLUGIN_ROLE) or "", item.data(0, ID_ROLE) or ""

    def select(self, plugin_id: str, checkpoint_id: str = "") -> bool:
        if not plugin_id:
            return False
        for item in self._items():
            if item.data(0, PLUGIN_ROLE) == plugin_id and (item.data(0, ID_ROLE) or "") == checkpoint_id:
                self.tree.setCurrentItem(item)
                return True
        return False

    def select_first(self) -> None:
        """The first checkpoint of a usable plugin, else the first plugin."""
        fallback = None
        for item in self._items():
            kind = item.data(0, KIND_ROLE)
            usable = self.registry is not None and not plugin_problem(self.registry.get(item.data(0, PLUGIN_ROLE)))
            if kind == "checkpoint" and usable:
                self.tree.setCurrentItem(item)
                return
            if kind == "plugin" and fallback is None:
                fallback = item
        if fallback is not None:
            self.tree.setCurrentItem(fallback)
        else:
            self._current_changed(None, None)

    def items_text(self) -> list[str]:
        return [item.text(0) for item in self._items()]

    def item_for(self, plugin_id: str, checkpoint_id: str = "") -> QTreeWidgetItem | None:
        for item in self._items():
            if item.data(0, PLUGIN_ROLE) == plugin_id and (item.data(0, ID_ROLE) or "") == checkpoint_id:
                return item
        return None

    def _items(self) -> list[QTreeWidgetItem]:
        items = []
        iterator = QTreeWidgetItemIterator(self.tree)
        while iterator.value():
            item = iterator.value()
            if item.data(0, KIND_ROLE) != "group":
                items.append(item)
            iterator += 1
        return items

    def _apply_filter(self, text: str) -> None:
        needle = text.strip().lower()
        for index in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(index)
            group_visible = False
            for p in range(group.childCount()):
                plugin = group.child(p)
                plugin_match = not needle or needle in plugin.text(0).lower()
                any_child = False
                for c in range(plugin.childCount()):
                    child = plugin.child(c)
                    match = plugin_match or needle in child.text(0).lower()
                    child.setHidden(not match)
                    any_child |= match
                plugin.setHidden(not (plugin_match or any_child))
                group_visible |= plugin_match or any_child
            group.setHidden(not group_visible)

    def _current_changed(self, current: QTreeWidgetItem | None, _previous: QTreeWidgetItem | None) -> None:
        plugin_id, checkpoint_id = self.selection()
        self._show_card(plugin_id, checkpoint_id)
        self.selectionChanged.emit(plugin_id, checkpoint_id)

    # card -----------------------------------------------------------------------------------------
    def set_device_text(self, text: str) -> None:
        self.device_text = text
        self._show_card(*self.selection())

    def _show_card(self, plugin_id: str, checkpoint_id: str) -> None:
        if self.registry is None or not plugin_id:
            self._set_card("Select a model to see its card.")
            return
        info = self.registry.get(plugin_id)
        if checkpoint_id:
            ckpt = next((c for c in self.registry.checkpoints_for(plugin_id) if c.id == checkpoint_id), None)
            if ckpt is not None:
                self._show_checkpoint(info, ckpt)
                return
        self._show_plugin(info)

    def _set_card(self, markdown: str) -> None:
        self.card.setMarkdown(_demote_headings(markdown))
        _tidy_tables(self.card.document())

    def _show_plugin(self, info: PluginInfo) -> None:
        self.card.document().setBaseUrl(QUrl())
        manifest = info.manifest
        problem = plugin_problem(info)
        lines = []
        if manifest is None:
            lines += [f"# {info.package}", "", f"**Disabled:** {problem}"]
        else:
            lines += [f"# {manifest.name}", "", manifest.description, ""]
            if problem:
                lines += [f"**Disabled:** {problem}", ""]
            lines += [
                "| | |", "|---|---|",
                f"| family | {manifest.family} |",
                f"| modality | {manifest.modality} |",
                f"| version | {manifest.version} |",
                f"| source | {info.source} |",
                f"| actions | {', '.join(a.title for a in manifest.actions)} |",
            ]
            if self.registry is not None and not self.registry.checkpoints_for(info.id):
                lines += ["", "No checkpoints yet: use the Train action to fit one."]
        self._set_card("\n".join(lines))

    def _show_checkpoint(self, info: PluginInfo, ckpt: Checkpoint) -> None:
        card = ckpt.card() or f"# {ckpt.name}\n\nThis checkpoint has no model card."
        problem = plugin_problem(info)
        facts = [
            "", "---", "", "| | |", "|---|---|",
            f"| plugin | {info.manifest.name if info.manifest else info.package} |",
            f"| size | {human_size(ckpt.size)} |",
            f"| sha256 | `{ckpt.sha256[:16]}…` |" if ckpt.sha256 else "| sha256 | unknown |",
            f"| device | {self.device_text} |",
            f"| source | {ckpt.source} |",
            f"| folder | `{ckpt.path}` |",
        ]
        if problem:
            facts += ["", f"**Disabled:** {problem}"]
        self.card.document().setBaseUrl(QUrl.fromLocalFile(str(Path(ckpt.path)) + "/"))
        self.card.setSearchPaths([str(ckpt.path)])
        self._set_card(card + "\n".join(facts))
        self.card.setToolTip(f"sha256 {ckpt.sha256}")


def _demote_headings(markdown: str) -> str:
    """Cards are written as documents; in a narrow panel their headings are a size too big."""
    return "\n".join("##" + line if line.startswith("#") else line for line in markdown.splitlines())


def _tidy_tables(document: QTextDocument) -> None:
    """Borderless, padded tables, without the empty header row of ``| | |`` key-value tables."""
    for frame in document.rootFrame().childFrames():
        if not isinstance(frame, QTextTable):
            continue
        table_format = frame.format()
        table_format.setBorder(0)
        table_format.setCellSpacing(0)
        table_format.setCellPadding(3)
        frame.setFormat(table_format)
        header = [frame.cellAt(0, c).firstCursorPosition().block().text().strip() for c in range(frame.columns())]
        if frame.rows() > 1 and not any(header):
            frame.removeRows(0, 1)


def _grey(item: QTreeWidgetItem, grey: bool) -> None:
    if grey:
        item.setForeground(0, QBrush(QColor(128, 128, 128)))
        font = item.font(0)
        font.setItalic(True)
        item.setFont(0, font)
