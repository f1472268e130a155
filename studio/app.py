"""The desktop app's entry point: ``python main.py``, ``studio-app`` and ``studio gui``.

The window is on screen before torch or any plugin code is imported: those load on the
engine's worker thread with the first job.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

DEVICES = ("auto", "cpu", "cuda", "mps")
SMOKE_TIMEOUT_S = 600


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="studio-app", description="Studio: an offline generative-model studio.")
    parser.add_argument("--project", type=Path, help="open this project folder (created if missing)")
    parser.add_argument("--device", choices=DEVICES, help="compute device for this session")
    parser.add_argument("--safe-mode", action="store_true", help="start with built-in plugins only")
    parser.add_argument(
        "--smoke-test", action="store_true",
        help="open the window, generate once with every shipped model into a temporary project, exit 0 if all worked",
    )
    parser.add_argument("--quit-after-show", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run(argv: list[str] | None = None) -> int:
    """Start the app; returns the exit status."""
    started = time.perf_counter()
    os.environ["HF_HUB_OFFLINE"] = "1"
    # torch reads this when it is first imported: leave one core to the UI thread.
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 2) - 1)))
    args = parse_args(sys.argv[1:] if argv is None else argv)

    # The core (numpy, sqlite) first: PySide6 inspects the source of every module imported
    # after it, which costs a few hundred milliseconds for numpy's many modules.
    import studio.core.engine
    import studio.core.store  # noqa: F401

    # isort: split
    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Studio")
    app.setOrganizationName("Studio")

    from studio.core.paths import resources_dir
    from studio.core.settings import Settings
    from studio.qt.main_window import MainWindow, apply_theme

    apply_theme(app)
    app.setWindowIcon(QIcon(str(resources_dir() / "icon.svg")))
    settings = Settings()
    project = args.project
    if args.smoke_test:
        scratch = Path(tempfile.mkdtemp(prefix="studio-smoke-"))
        settings.path = scratch / "settings.json"  # the user's settings are read, never changed
        project = scratch / "project"
    window = MainWindow(settings=settings, project_path=project, device=args.device, safe_mode=args.safe_mode)
    window.show()
    _install_excepthook(window)
    signal.signal(signal.SIGINT, signal.SIG_DFL)

    if args.quit_after_show:
        def report() -> None:
            print(f"first window after {time.perf_counter() - started:.3f} s (torch imported: {'torch' in sys.modules})", flush=True)
            window.close()

        QTimer.singleShot(0, report)
        return app.exec()
    if args.smoke_test:
        status = run_smoke_test(window)
        window.close()
        return status
    return app.exec()


def main(argv: list[str] | None = None) -> None:
    sys.exit(run(argv))


def run_smoke_test(window, timeout_s: float = SMOKE_TIMEOUT_S) -> int:
    """Generate once with each shipped checkpoint through the engine; 0 when every job made results."""
    from PySide6.QtCore import QEventLoop, QTimer

    from studio.core.engine import Job, JobState
    from studio.core.params import ParamError

    jobs: list[Job] = []
    problems: list[str] = []
    for ckpt in window.registry.checkpoints():
        if ckpt.source != "shipped":
            continue
        info = window.registry.plugins.get(ckpt.plugin)
        if info is None or not info.usable or info.manifest is None:
            problems.append(f"{ckpt.id}: plugin {ckpt.plugin!r} is unavailable ({info.error if info else 'missing'})")
            continue
        actions = info.manifest.actions_for("generate")
        if not actions:
            print(f"skip {ckpt.id}: {info.manifest.name} has no generate action")
            continue
        try:
            params = actions[0].params.validate({})
        except ParamError as exc:
            problems.append(f"{ckpt.id}: {exc}")
            continue
        jobs.append(window.engine.submit(Job(info.id, actions[0].id, ckpt.id, params, seed=0)))

    loop = QEventLoop()

    def check(*_args) -> None:
        if all(job.state.finished for job in jobs):
            loop.quit()

    window.engine_bridge.jobEvent.connect(check)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    QTimer.singleShot(0, check)
    loop.exec()
    for job in jobs:
        if job.state == JobState.DONE and job.record_ids:
            print(f"ok   {job.model_id}: {len(job.record_ids)} results in {job.elapsed:.2f} s on {job.resolved_device}")
        elif job.state.finished:
            problems.append(f"{job.model_id}: {job.state.value}: {job.error or 'no results'}")
        else:
            window.engine.cancel(job)
            problems.append(f"{job.model_id}: still {job.state.value} after {timeout_s:.0f} s")
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    if not jobs and not problems:
        print("FAIL no shipped checkpoints found", file=sys.stderr)
        return 1
    return 1 if problems else 0


def _install_excepthook(window) -> None:
    """An unexpected error in a slot becomes an error dialog with the traceback as details."""
    previous = sys.excepthook

    def hook(kind, value, tb) -> None:
        details = "".join(traceback.format_exception(kind, value, tb))
        sys.stderr.write(details)
        try:
            window.show_error("Something went wrong", f"{kind.__name__}: {value}", details)
        except RuntimeError:
            previous(kind, value, tb)

    sys.excepthook = hook


if __name__ == "__main__":
    main()
