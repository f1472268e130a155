"""The installed (frozen) app against the same app run from the source checkout, side by side.

    python bench/installer.py [--deb dist/installer/studio_0.1.0_amd64.deb] [--runs 3]

Unpacks the .deb into a temporary root, then alternates the two in fresh processes (offscreen,
a fresh STUDIO_HOME each run, so the first generate also builds the user folders): spawn to
first window (`studio-app --quit-after-show`) and spawn to first image on disk (`studio generate
ppca-mnist`, which needs numpy only, and `vae-mnist`, which imports torch). Also compares the installed size with the source run's dependency footprint
(the venv's site-packages). Prints a markdown table for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("ppca-mnist", "vae-mnist")  # numpy only; imports torch


def folder_mb(path: Path) -> float:
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0]) / 1024


def timed(cmd: list[str], env: dict[str, str], expect: Path | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=600)
    elapsed = time.perf_counter() - started
    if expect is not None and not expect.exists():
        raise RuntimeError(f"{' '.join(cmd)} did not write {expect}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deb", type=Path, default=max(ROOT.glob("dist/installer/studio_*.deb"), default=None))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.deb is None or not args.deb.exists():
        sys.exit("no .deb: run installer/build_linux.sh first, or pass --deb")

    work = Path(tempfile.mkdtemp(prefix="studio-bench-installer-"))
    subprocess.run(["dpkg-deb", "-x", str(args.deb), str(work / "root")], check=True)
    bundle = work / "root" / "opt" / "studio"
    frozen_app, frozen_cli = bundle / "studio-app", bundle / "studio"
    source_app = [sys.executable, "main.py"]
    source_cli = [sys.executable, "-m", "studio"]

    rows: dict[str, list[float]] = {}
    for run in range(args.runs):
        for label, app, cli in (("installed", [str(frozen_app)], [str(frozen_cli)]), ("source", source_app, source_cli)):
            env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "STUDIO_HOME": str(work / f"home-{label}-{run}")}
            rows.setdefault(f"{label}: spawn to first window", []).append(timed(app + ["--quit-after-show"], env))
            for model in MODELS:
                png = work / f"{label}-{model}-{run}.png"
                command = cli + ["generate", model, "--seed", "0", "--out", str(png)]
                rows.setdefault(f"{label}: spawn to first image ({model})", []).append(timed(command, env, png))

    site_packages = Path(sysconfig.get_paths()["purelib"])
    print("| measure | installed (.deb, frozen) | source checkout (venv) |\n|---|---:|---:|")
    print(f"| size on disk (MB) | {folder_mb(bundle):.0f} | {folder_mb(site_packages):.0f} (site-packages) |")
    print(f"| .deb download (MB) | {args.deb.stat().st_size / 2**20:.0f} | |")
    for measure in ["spawn to first window"] + [f"spawn to first image ({model})" for model in MODELS]:
        ours = rows[f"installed: {measure}"]
        base = rows[f"source: {measure}"]
        print(f"| {measure}, s (median of {args.runs}; first run) | {statistics.median(ours):.2f} ({ours[0]:.2f}) "
              f"| {statistics.median(base):.2f} ({base[0]:.2f}) |")
    subprocess.run(["rm", "-rf", str(work)], check=True)


if __name__ == "__main__":
    main()
