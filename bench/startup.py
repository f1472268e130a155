"""Time to first window against `python -c 'import torch'`, side by side in one run.

    python bench/startup.py [--runs 5]

Each run is a fresh process (offscreen Qt); we time from spawn until the app prints that its
window is shown. The table goes to stdout; paste it into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def time_until_line(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    elapsed = time.perf_counter() - started
    process.wait(timeout=60)
    if not line:
        raise RuntimeError(f"{' '.join(cmd)} printed nothing")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "STUDIO_HOME": "/tmp/studio-bench-startup"}
    cases = {
        "Studio: spawn to first window": [sys.executable, "main.py", "--quit-after-show"],
        "python -c 'import torch'": [sys.executable, "-c", "import torch; print('imported')"],
        "python -c 'import PySide6.QtWidgets'": [sys.executable, "-c", "import PySide6.QtWidgets; print('imported')"],
    }
    time_until_line(cases["Studio: spawn to first window"], env)  # warm the file cache once
    print(f"| what ({args.runs} runs, median) | seconds | min | max |")
    print("|---|---|---|---|")
    for name, cmd in cases.items():
        times = [time_until_line(cmd, env) for _ in range(args.runs)]
        print(f"| {name} | {statistics.median(times):.2f} | {min(times):.2f} | {max(times):.2f} |")


if __name__ == "__main__":
    main()
