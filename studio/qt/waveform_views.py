"""The plots of the waveform editor: time ruler, channel tracks, overview and spectrogram.

Tracks draw an ``Envelope`` (from the peak summary) as one vertical stroke per screen column:
peaks in dark blue, RMS in light blue, as Audacity does; zoomed in past one sample per
column, they draw the samples as a line, with dots when there is room.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt

from studio.core.audio_summary import Envelope

BACKGROUND = "#1d2026"
TRACK_BACKGROUND = "#262a33"
PEAK_COLOR = "#4a86e8"
RMS_COLOR = "#9cc0ff"
SELECTION_BRUSH = (255, 255, 255, 45)
CURSOR_COLOR = "#f5c542"
PLAY_COLOR = "#4cd964"
AXIS_COLOR = "#b8bec9"


def format_time(seconds: float, precision: int = 3) -> str:
    """``m:ss.mmm`` (``h:mm:ss.mmm`` past an hour)."""
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:0{3 + precision if precision else 2}.{precision}f}"
    if hours >= 1:
        return f"{sign}{int(hours)}:{int(minutes):02d}:{text}"
    return f"{sign}{int(minutes)}:{text}"


class TimeAxis(pg.AxisItem):
    """A ruler in seconds that switches to m:ss when the view spans minutes."""

    def tickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph's name)
        if spacing >= 1.0:
            return [format_time(v, 0) if v >= 60 else f"{v:g}s" for v in values]
        decimals = max(0, min(6, int(np.ceil(-np.log10(spacing)))))
        return [format_time(v, decimals) if v >= 60 else f"{v:.{decimals}f}" for v in values]


class EditorViewBox(pg.ViewBox):
    """Left drag selects, click places the cursor, wheel zooms around the mouse, shift+wheel scrolls."""

    def __init__(
        self,
        on_select: Callable[[float, float, bool], None],
        on_click: Callable[[float], None],
        on_zoom: Callable[[float, float], None],
        on_scroll: Callable[[float], None],
    ) -> None:
        super().__init__(enableMenu=False)
        self.setMouseEnabled(x=False, y=False)
        self._on_select, self._on_click, self._on_zoom, self._on_scroll = on_select, on_click, on_zoom, on_scroll

    def mouseDragEvent(self, ev, axis=None):  # noqa: N802
        if ev.button() != Qt.MouseButton.LeftButton:
            ev.ignore()
            return
        ev.accept()
        start = self.mapSceneToView(ev.buttonDownScenePos()).x()
        self._on_select(start, self.mapSceneToView(ev.scenePos()).x(), ev.isFinish())

    def mouseClickEvent(self, ev):  # noqa: N802
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self._on_click(self.mapSceneToView(ev.scenePos()).x())
        else:
            ev.ignore()

    def wheelEvent(self, ev, axis=None):  # noqa: N802
        steps = ev.delta() / 120.0
        if ev.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self._on_scroll(-steps * 0.1)
        else:
            self._on_zoom(1.25**steps, self.mapSceneToView(ev.scenePos()).x())
        ev.accept()


def envelope_strokes(env: Envelope, channel: int, rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, y) of the peak stroke and of the RMS stroke for one channel, x in seconds."""
    x = env.position / rate
    if env.is_samples:
        values = env.low[:, channel]
        return x, values, x[:0], values[:0]
    xs = np.repeat(x, 2)
    low, high = env.low[:, channel], env.high[:, channel]
    peak = np.empty(2 * len(x), np.float32)
    peak[0::2], peak[1::2] = low, high
    rms = env.rms[:, channel]
    band = np.empty_like(peak)
    band[0::2], band[1::2] = np.maximum(-rms, low), np.minimum(rms, high)
    return xs, peak, xs, band


class ChannelTrack:
    """One channel's plot: strokes, selection region, edit cursor and play cursor."""

    def __init__(self, view_box: EditorViewBox, label: str) -> None:
        self.plot = pg.PlotItem(viewBox=view_box)
        self.plot.hideButtons()
        self.plot.hideAxis("bottom")
        self.plot.getAxis("left").setWidth(46)
        self.plot.getAxis("left").setTicks([[(-1.0, "-1.0"), (-0.5, "-0.5"), (0.0, label), (0.5, "0.5"), (1.0, "1.0")]])
        self.plot.getAxis("left").setTextPen(AXIS_COLOR)
        self.plot.getAxis("left").setPen(AXIS_COLOR)
        view_box.setBackgroundColor(TRACK_BACKGROUND)
        view_box.setYRange(-1.05, 1.05, padding=0)
        view_box.setLimits(yMin=-1.05, yMax=1.05)
        self.peak = pg.PlotCurveItem(pen=pg.mkPen(PEAK_COLOR, width=1), skipFiniteCheck=True)
        self.rms = pg.PlotCurveItem(pen=pg.mkPen(RMS_COLOR, width=1), skipFiniteCheck=True)
        self.dots = pg.ScatterPlotItem(size=5, pen=None, brush=pg.mkBrush(PEAK_COLOR))
        self.zero = pg.InfiniteLine(pos=0.0, angle=0, pen=pg.mkPen("#505866", width=1))
        self.region = pg.LinearRegionItem(brush=pg.mkBrush(*SELECTION_BRUSH), pen=pg.mkPen("#ffffff", width=1))
        self.region.setZValue(10)
        self.region.hide()
        self.cursor = pg.InfiniteLine(pos=0.0, angle=90, pen=pg.mkPen(CURSOR_COLOR, width=1))
        self.play_head = pg.InfiniteLine(pos=0.0, angle=90, pen=pg.mkPen(PLAY_COLOR, width=2))
        self.play_head.hide()
        for item in (self.zero, self.peak, self.rms, self.dots, self.region, self.cursor, self.play_head):
            self.plot.addItem(item, ignoreBounds=True)

    def draw(self, env: Envelope, channel: int, rate: int, columns: int) -> None:
        x, peak, xr, band = envelope_strokes(env, channel, rate)
        self.peak.setData(x, peak, connect="all")
        self.rms.setData(xr, band, connect="all")
        if env.is_samples and len(x) * 6 < columns:
            self.dots.setData(x, peak)
        else:
            self.dots.setData([], [])


class Ruler:
    """The time ruler above the tracks: an empty plot of no height showing only its top axis."""

    def __init__(self) -> None:
        self.plot = pg.PlotItem(viewBox=pg.ViewBox(enableMenu=False), axisItems={"top": TimeAxis("top")})
        self.plot.hideButtons()
        self.plot.hideAxis("bottom")
        self.plot.showAxis("top")
        self.plot.setMouseEnabled(x=False, y=False)
        left = self.plot.getAxis("left")
        left.setWidth(46)
        left.setStyle(showValues=False)
        left.setPen(BACKGROUND)
        self.plot.getAxis("top").setTextPen(AXIS_COLOR)
        self.plot.getAxis("top").setPen(AXIS_COLOR)
        self.plot.setMaximumHeight(30)


class OverviewPlot(pg.PlotWidget):
    """The whole file, small, with the detail view's range as a draggable window."""

    def __init__(self, on_window_moved: Callable[[float, float], None]) -> None:
        super().__init__(background=BACKGROUND)
        self.setFixedHeight(64)
        item = self.getPlotItem()
        item.hideAxis("left")
        item.hideAxis("bottom")
        item.hideButtons()
        item.setMenuEnabled(False)
        item.getViewBox().setMouseEnabled(x=False, y=False)
        item.getViewBox().setBackgroundColor(TRACK_BACKGROUND)
        item.setYRange(-1.0, 1.0, padding=0.02)
        self.peak = pg.PlotCurveItem(pen=pg.mkPen(PEAK_COLOR, width=1), skipFiniteCheck=True)
        self.addItem(self.peak)
        self.window = pg.LinearRegionItem(brush=pg.mkBrush(255, 255, 255, 35), pen=pg.mkPen(CURSOR_COLOR, width=1))
        self.window.setZValue(10)
        self.addItem(self.window, ignoreBounds=True)
        self._on_window_moved = on_window_moved
        self.window.sigRegionChanged.connect(self._moved)
        self._silent = False

    def draw(self, env: Envelope, rate: int, duration: float) -> None:
        if env.is_samples:
            x, y = env.position / rate, env.low.max(axis=1)
        else:
            x = np.repeat(env.position / rate, 2)
            y = np.empty(2 * len(env.position), np.float32)
            y[0::2], y[1::2] = env.low.min(axis=1), env.high.max(axis=1)
        self.peak.setData(x, y, connect="all")
        self.getPlotItem().setXRange(0.0, max(duration, 1e-6), padding=0)
        self.window.setBounds((0.0, duration))

    def show_window(self, start: float, stop: float) -> None:
        self._silent = True
        self.window.setRegion((start, stop))
        self._silent = False

    def _moved(self) -> None:
        if not self._silent:
            start, stop = self.window.getRegion()
            self._on_window_moved(start, stop)


class SpectrogramTrack:
    """A magnitude image (dB, inferno) under the tracks, y in kHz, x shared with them."""

    def __init__(self) -> None:
        axes = {"left": pg.AxisItem("left"), "bottom": TimeAxis("bottom")}
        self.plot = pg.PlotItem(viewBox=pg.ViewBox(enableMenu=False), axisItems=axes)
        self.plot.hideButtons()
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.getAxis("left").setWidth(46)
        self.plot.getAxis("left").setLabel("kHz")
        for name in ("left", "bottom"):
            self.plot.getAxis(name).setTextPen(AXIS_COLOR)
            self.plot.getAxis(name).setPen(AXIS_COLOR)
        self.image = pg.ImageItem(axisOrder="col-major")
        self.image.setLookupTable(pg.colormap.get("inferno").getLookupTable(nPts=256))
        self.plot.addItem(self.image)
        self.region = pg.LinearRegionItem(brush=pg.mkBrush(*SELECTION_BRUSH), pen=pg.mkPen("#ffffff", width=1), movable=False)
        self.region.hide()
        self.plot.addItem(self.region, ignoreBounds=True)

    def draw(self, db: np.ndarray, start_s: float, stop_s: float, rate: int) -> None:
        self.image.setImage(db, levels=(-100.0, 0.0), autoLevels=False)
        nyquist_khz = rate / 2000.0
        self.image.setRect(QRectF(QPointF(start_s, 0.0), QPointF(stop_s, nyquist_khz)))
        self.plot.setYRange(0.0, nyquist_khz, padding=0)
