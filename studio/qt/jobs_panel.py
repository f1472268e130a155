"""The Jobs dock: one row per job with progress, ETA, live preview, state and Cancel.

Failures read as one line with the traceback behind "Details"; out-of-memory failures offer
"Retry on CPU". Rows only read Job fields; the engine owns the jobs.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QScrollArea,
    QSizePolicy,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.engine import Job, JobState
from studio.qt.gallery import array_to_qimage

PREVIEW = 44


def format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def job_title(job: Job) -> str:
    return f"{job.action_id.replace('_', ' ').capitalize()} · {job.model_id or job.plugin_id}"


def job_status(job: Job) -> str:
    """The short state line under a job's title."""
    if job.state == JobState.QUEUED:
        return "Queued"
    if job.state == JobState.RUNNING:
        if job.paused:
            return "Paused"
        parts = [f"Step {job.step} of {job.total}" if job.total else "Starting…"]
        if job.eta is not None:
            parts.append(f"about {format_seconds(job.eta)} left")
        if job.message:
            parts.append(job.message)
        return " · ".join(parts)
    if job.state == JobState.DONE:
        outputs = len(job.record_ids)
        made = f"{outputs} result{'s' if outputs != 1 else ''}" if outputs else "done"
        text = job.result.text if job.result is not None and job.result.text else ""
        device = f" on {job.resolved_device.upper()}" if job.resolved_device else ""
        return " · ".join(p for p in (f"{made} in {format_seconds(job.elapsed)}{device}", text) if p)
    if job.state == JobState.CANCELLED:
        return "Cancelled"
    return "Failed"


class JobRow(QFrame):
    cancelRequested = Signal(object)
    retryRequested = Signal(object)
    detailsRequested = Signal(object)
    removeRequested = Signal(object)

    def __init__(self, job: Job, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.job = job
        self.setObjectName("jobRow")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        style = self.style()
        self.preview = QLabel()
        self.preview.setFixedSize(PREVIEW, PREVIEW)
        self.preview.setObjectName("jobPreview")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title = QLabel(job_title(job))
        self.title.setObjectName("jobTitle")
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.status = QLabel()
        self.status.setObjectName("hint")
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.error = QLabel()
        self.error.setObjectName("error")
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error.hide()
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress.setFixedHeight(6)
        self.cancel_button = _tool(style.standardIcon(QStyle.StandardPixmap.SP_DialogCancelButton), "Cancel this job")
        self.cancel_button.clicked.connect(lambda: self.cancelRequested.emit(self.job))
        self.details_button = _tool(None, "Show the full error report", "Details")
        self.details_button.clicked.connect(lambda: self.detailsRequested.emit(self.job))
        self.retry_button = _tool(None, "Run the same job again on the CPU", "Retry on CPU")
        self.retry_button.setObjectName("accentTool")
        self.retry_button.clicked.connect(lambda: self.retryRequested.emit(self.job))
        self.remove_button = _tool(style.standardIcon(QStyle.StandardPixmap.SP_TitleBarCloseButton), "Remove from the list")
        self.remove_button.clicked.connect(lambda: self.removeRequested.emit(self.job))

        text = QVBoxLayout()
        text.setSpacing(3)
        top = QHBoxLayout()
        top.setSpacing(4)
        top.addWidget(self.title, 1)
        for button in (self.retry_button, self.details_button, self.cancel_button, self.remove_button):
            top.addWidget(button)
        text.addLayout(top)
        text.addWidget(self.progress)
        text.addWidget(self.status)
        text.addWidget(self.error)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.setSpacing(10)
        layout.addWidget(self.preview, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(text, 1)
        self._preview_id: int | None = None
        self.refresh()

    def refresh(self) -> None:
        job = self.job
        if self.property("state") != job.state.value:
            self.setProperty("state", job.state.value)
            for widget in (self, self.progress):
                widget.style().unpolish(widget)
                widget.style().polish(widget)
        if job.state == JobState.DONE:
            self.progress.setRange(0, 1)
            self.progress.setValue(1)
        elif job.total > 0:
            self.progress.setRange(0, job.total)
            self.progress.setValue(min(job.step, job.total))
        elif job.state == JobState.RUNNING:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
        self.status.setText(job_status(job))
        self.status.setToolTip(self.status.text())
        failed = job.state == JobState.FAILED
        self.error.setVisible(failed)
        if failed:
            self.error.setText(_one_line(job.error))
            self.error.setToolTip(job.error)
        self.cancel_button.setVisible(not job.state.finished)
        self.details_button.setVisible(failed and bool(job.details))
        self.retry_button.setVisible(failed and job.error_kind == "oom")
        self.remove_button.setVisible(job.state.finished)
        self._refresh_preview()

    def _refresh_preview(self) -> None:
        preview = self.job.preview
        if preview is None and self.job.result is not None and self.job.result.images:
            preview = self.job.result.images[0]
        if preview is None or id(preview) == self._preview_id:
            return
        try:
            image = array_to_qimage(preview)
        except (ValueError, TypeError, AttributeError, IndexError):
            return
        self._preview_id = id(preview)
        small = max(image.width(), image.height()) * 2 <= PREVIEW
        mode = Qt.TransformationMode.FastTransformation if small else Qt.TransformationMode.SmoothTransformation
        pixmap = QPixmap.fromImage(image).scaled(PREVIEW, PREVIEW, Qt.AspectRatioMode.KeepAspectRatio, mode)
        self.preview.setPixmap(pixmap)


def _one_line(message: str) -> str:
    line = (message or "The job failed.").strip().splitlines()[0]
    line = line[:1].upper() + line[1:]
    return line if len(line) <= 240 else line[:237] + "…"


def _tool(icon, tip: str, text: str = "") -> QToolButton:
    button = QToolButton()
    if icon is not None:
        button.setIcon(icon)
    if text:
        button.setText(text)
    button.setToolTip(tip)
    button.setAutoRaise(True)
    return button


class JobsPanel(QWidget):
    cancelRequested = Signal(object)
    retryRequested = Signal(object)
    detailsRequested = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: dict[int, JobRow] = {}
        self.summary = QLabel("No jobs yet")
        self.summary.setObjectName("hint")
        self.clear_button = QToolButton()
        self.clear_button.setText("Clear finished")
        self.clear_button.setToolTip("Remove finished, failed and cancelled jobs from the list")
        self.clear_button.clicked.connect(self.clear_finished)
        header = QHBoxLayout()
        header.addWidget(self.summary, 1)
        header.addWidget(self.clear_button)
        self.container = QWidget()
        self.container.setObjectName("jobsContainer")
        self.list_layout = QVBoxLayout(self.container)
        self.list_layout.setContentsMargins(0, 0, 0, 0)
        self.list_layout.setSpacing(6)
        self.list_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self.container)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.setSpacing(6)
        layout.addLayout(header)
        layout.addWidget(scroll, 1)

    def on_job_event(self, event: str, job: Job) -> None:
        row = self.rows.get(job.id)
        if row is None:
            row = JobRow(job, self.container)
            row.cancelRequested.connect(self.cancelRequested)
            row.retryRequested.connect(self.retryRequested)
            row.detailsRequested.connect(self.detailsRequested)
            row.removeRequested.connect(self.remove)
            self.rows[job.id] = row
            self.list_layout.insertWidget(0, row)
        else:
            row.refresh()
        self._update_summary()

    def remove(self, job: Job) -> None:
        row = self.rows.pop(job.id, None)
        if row is not None:
            row.setParent(None)
            row.deleteLater()
        self._update_summary()

    def clear_finished(self) -> None:
        for row in [r for r in self.rows.values() if r.job.state.finished]:
            self.remove(row.job)

    def _update_summary(self) -> None:
        jobs = [r.job for r in self.rows.values()]
        running = sum(j.state == JobState.RUNNING for j in jobs)
        queued = sum(j.state == JobState.QUEUED for j in jobs)
        failed = sum(j.state == JobState.FAILED for j in jobs)
        parts = []
        if running:
            parts.append(f"{running} running")
        if queued:
            parts.append(f"{queued} queued")
        if failed:
            parts.append(f"{failed} failed")
        if not parts:
            parts.append("Idle" if jobs else "No jobs yet")
        self.summary.setText(" · ".join(parts))
        self.clear_button.setEnabled(any(j.state.finished for j in jobs))
