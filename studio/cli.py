"""The headless command line over the same core the GUI uses.

Every failure the user can cause prints one line on stderr and exits non-zero; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

EXIT_USAGE = 2
EXIT_FAILED = 1


class CliError(Exception):
    """A failure to report as one line; ``details`` (a traceback) is shown with --debug."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


def _global_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--project", metavar="PATH", default=default, help="project folder (default: your default project)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default=default, help="where models run")
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="show tracebacks")
    parser.add_argument("--safe-mode", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="built-in plugins only")


def build_parser() -> argparse.ArgumentParser:
    from studio import __version__

    parser = argparse.ArgumentParser(prog="studio", description="Studio: offline generative models.")
    parser.add_argument("--version", action="version", version=f"studio {__version__}")
    _global_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, suppress=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text, parents=[common])

    p = command("plugins", "list plugins, their actions and state")
    p.add_argument("--json", action="store_true")
    p = command("models", "list checkpoints: id, family, size, sha256")
    p.add_argument("--json", action="store_true")

    def model_command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = command(name, help_text)
        p.add_argument("model", metavar="MODEL", help="a checkpoint id from `studio models`, or a checkpoint folder")
        p.add_argument("--action", help="which action of this verb, when the plugin has several")
        p.add_argument("--seed", type=int, help="random seed (default: random)")
        p.add_argument("--set", dest="assignments", action="append", default=[], metavar="K=V",
                       help="set a parameter (repeatable)")
        p.add_argument("--out", type=Path, help="output file (.png for images, .wav/.flac for audio)")
        return p

    p = model_command("generate", "generate images or audio")
    p.add_argument("-n", type=int, metavar="N", help="how many (images: one grid PNG)")
    p = model_command("edit", "edit an input file")
    p.add_argument("--input", type=Path, required=True)
    p.add_argument("--mask", type=Path, help="mask image: white = change")
    p = model_command("interpolate", "interpolate between two files or two seeds")
    start = p.add_mutually_exclusive_group(required=True)
    start.add_argument("--from", dest="source", type=Path, metavar="FILE")
    start.add_argument("--seed-a", type=int, metavar="S")
    end = p.add_mutually_exclusive_group(required=True)
    end.add_argument("--to", dest="target", type=Path, metavar="FILE")
    end.add_argument("--seed-b", type=int, metavar="S")
    p.add_argument("--steps", type=int, metavar="K")
    p = model_command("likelihood", "bits/dim of an image, or a folder ranked from typical to surprising")
    p.add_argument("--input", type=Path, required=True, metavar="FILE_OR_DIR")
    p.add_argument("--json", action="store_true")

    p = command("train", "train a model of FAMILY on a folder")
    p.add_argument("family", metavar="FAMILY")
    p.add_argument("--data", type=Path, required=True, metavar="DIR")
    p.add_argument("--out", type=Path, required=True, metavar="DIR")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    p.add_argument("--set", dest="assignments", action="append", default=[], metavar="K=V")

    p = command("info", "the generation metadata embedded in a file")
    p.add_argument("file", type=Path, metavar="FILE")

    p = command("data", "build the data sets shipped models train on")
    p.add_argument("data_command", choices=("build", "list"))
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument("--out", type=Path, metavar="DIR")

    command("gui", "open the desktop studio")
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if args.command == "gui":
        from studio.app import run as run_gui

        gui_argv = []
        if args.safe_mode:
            gui_argv.append("--safe-mode")
        if args.project:
            gui_argv += ["--project", args.project]
        if args.device:
            gui_argv += ["--device", args.device]
        return run_gui(gui_argv)
    try:
        return COMMANDS[args.command](args) or 0
    except KeyboardInterrupt:
        print("studio: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            if getattr(exc, "details", ""):
                print(exc.details, file=sys.stderr)
            raise
        print(f"studio: error: {_message(exc)}", file=sys.stderr)
        return EXIT_FAILED


def _message(exc: Exception) -> str:
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    text = str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__
    return text


# shared pieces --------------------------------------------------------------------------------
def _registry(args):
    from studio.core.registry import Registry
    from studio.core.settings import Settings

    return Registry(enabled=Settings().get("enabled_plugins"), safe_mode=args.safe_mode)


def _project(args):
    from studio.core.paths import default_project_dir
    from studio.core.store import Project

    return Project(Path(args.project) if args.project else default_project_dir())


def _engine(args, with_project: bool = True):
    from studio.core.engine import Engine
    from studio.core.settings import Settings

    registry = _registry(args)
    device = args.device or Settings().get("device")
    return Engine(registry, _project(args) if with_project else None, device=device)


def _pick_action(manifest, verb: str, action_id: str | None):
    if action_id:
        action = manifest.action(action_id)
        if action.verb != verb:
            raise CliError(f"action {action_id!r} of {manifest.name} is a {action.verb} action, not {verb}")
        return action
    actions = manifest.actions_for(verb)
    if not actions:
        raise CliError(f"{manifest.name} cannot {verb}")
    return actions[0]


def _resolve(engine, model_ref: str, verb: str, action_id: str | None):
    ckpt = engine.registry.checkpoint(model_ref)
    manifest = engine.registry.manifest(ckpt.plugin)
    return ckpt, manifest, _pick_action(manifest, verb, action_id)


def _values(action, assignments: list[str]) -> dict[str, Any]:
    return action.params.parse_assignments(assignments)


def _input_param(action, kinds: tuple[str, ...], preferred: tuple[str, ...]) -> str:
    for name in preferred:
        spec = action.params.get(name)
        if spec is not None and spec.type in kinds:
            return name
    for spec in action.params:
        if spec.type in kinds:
            return spec.name
    raise CliError(f"action {action.id!r} takes no {' or '.join(kinds)} input")


def _run(engine, job):
    """Run a job in this thread with a progress line; Ctrl+C cancels at the next step."""
    from studio.core.engine import JobState

    def report(event: str, j) -> None:
        if event == "progress" and sys.stderr.isatty():
            metrics = " ".join(f"{k}={v:.4g}" for k, v in j.metrics.items())
            eta = f" eta {j.eta:.0f}s" if j.eta is not None else ""
            print(f"\r  {j.step}/{j.total} {j.message[:40]} {metrics}{eta}\033[K", end="", file=sys.stderr)

    engine.subscribe(report)
    previous = signal.signal(signal.SIGINT, lambda *_: job.cancel())
    try:
        engine.execute(job)
    finally:
        signal.signal(signal.SIGINT, previous)
        engine.unsubscribe(report)
        if sys.stderr.isatty():
            print("\r\033[K", end="", file=sys.stderr)
    if job.state == JobState.CANCELLED:
        raise CliError("cancelled")
    if job.state == JobState.FAILED:
        raise CliError(job.error, job.details)
    return job


def _write_outputs(job, out: Path | None, default_stem: str, strip: bool) -> list[Path]:
    from studio.core import media

    result = job.result
    meta = _job_metadata(job)
    written = []
    if result.images:
        path = out or Path(f"{default_stem}.png")
        columns = len(result.images) if strip else None
        image = result.images[0] if len(result.images) == 1 else media.grid(result.images, columns)
        written.append(media.save_image(path, image, {**meta, "width": image.shape[1], "height": image.shape[0]}))
    for index, audio in enumerate(result.audio):
        path = out or Path(f"{default_stem}.wav")
        if len(result.audio) > 1:
            path = path.with_name(f"{path.stem}-{index + 1}{path.suffix or '.wav'}")
        subtype = "16" if path.suffix.lower() == ".flac" else "float"
        written.append(media.save_audio(path, audio, subtype=subtype, meta={**meta, "batch_index": index}))
    return written


def _job_metadata(job) -> dict[str, Any]:
    from studio import __version__
    from studio.core.store import _jsonable

    return {
        "studio_version": __version__, "plugin": job.plugin_id, "action": job.action_id,
        "model_id": job.model_id, "model_sha256": job.model_sha256, "params": _jsonable(job.params),
        "seed": job.seed, "device": job.resolved_device, "duration": round(job.elapsed, 3),
        "record_ids": job.record_ids,
    }


def _finish(job, out: Path | None, stem: str, strip: bool = False) -> int:
    """Write the outputs (a strip for interpolations, else a grid) and print their paths."""
    paths = _write_outputs(job, out, stem, strip)
    for path in paths:
        print(path)
    if job.result.text:
        print(job.result.text)
    return 0


# commands ---------------------------------------------------------------------------------------
def cmd_plugins(args) -> int:
    registry = _registry(args)
    rows = []
    for info in registry.plugins.values():
        m = info.manifest
        state = "error" if info.error else ("enabled" if info.enabled else "disabled")
        rows.append({
            "id": info.id, "name": m.name if m else info.package, "family": m.family if m else "",
            "modality": m.modality if m else "", "version": m.version if m else "", "source": info.source,
            "state": state, "error": info.error,
            "actions": [{"id": a.id, "verb": a.verb, "params": [p.to_dict() for p in a.params]}
                        for a in (m.actions if m else ())],
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        actions = ", ".join(a["id"] for a in row["actions"])
        print(f"{row['id']:<22} {row['family']:<10} {row['modality']:<7} {row['state']:<9} {actions}")
        if row["error"]:
            print(f"    {row['error']}")
    return 0


def cmd_models(args) -> int:
    registry = _registry(args)
    rows = [{"id": c.id, "plugin": c.plugin, "family": c.family, "source": c.source, "size": c.size,
             "sha256": c.sha256, "path": str(c.path)} for c in registry.checkpoints()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(f"{row['id']:<24} {row['family']:<10} {row['source']:<8} {_size(row['size']):>9}  {row['sha256'][:12]}")
    return 0


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def cmd_generate(args) -> int:
    from studio.core.engine import Job

    engine = _engine(args)
    ckpt, manifest, action = _resolve(engine, args.model, "generate", args.action)
    values = _values(action, args.assignments)
    if args.n is not None:
        count_param = next((n for n in ("count", "takes") if action.params.get(n)), None)
        if count_param:
            values[count_param] = args.n
        elif args.n != 1:
            raise CliError(f"{manifest.name} makes one result per run; -n is not supported")
    job = _run(engine, Job(manifest.id, action.id, args.model, values, seed=args.seed, device=args.device or "auto"))
    return _finish(job, args.out, f"{ckpt.id}-{job.seed}")


def cmd_edit(args) -> int:
    from studio.core.engine import Job

    engine = _engine(args)
    ckpt, manifest, action = _resolve(engine, args.model, "edit", args.action)
    values = _values(action, args.assignments)
    values[_input_param(action, ("image", "audio"), ("image", "audio"))] = str(args.input)
    if args.mask:
        if action.params.get("mask") is None:
            raise CliError(f"action {action.id!r} takes no mask")
        values["mask"] = str(args.mask)
    job = _run(engine, Job(manifest.id, action.id, args.model, values, seed=args.seed, device=args.device or "auto"))
    return _finish(job, args.out, f"{Path(args.input).stem}-{action.id}-{job.seed}")


def cmd_interpolate(args) -> int:
    from studio.core.engine import Job

    engine = _engine(args)
    ckpt, manifest, action = _resolve(engine, args.model, "interpolate", args.action)
    values = _values(action, args.assignments)
    for file_arg, seed_arg, file_param, seed_param in (
        (args.source, args.seed_a, "image_a", "seed_a"), (args.target, args.seed_b, "image_b", "seed_b"),
    ):
        name = file_param if file_arg is not None else seed_param
        if action.params.get(name) is None:
            raise CliError(f"{manifest.name} cannot interpolate from {'files' if file_arg else 'seeds'}")
        values[name] = str(file_arg) if file_arg is not None else seed_arg
    if args.steps is not None:
        values["steps"] = args.steps
    job = _run(engine, Job(manifest.id, action.id, args.model, values, seed=args.seed, device=args.device or "auto"))
    return _finish(job, args.out, f"{ckpt.id}-interpolation-{job.seed}", strip=True)


def cmd_likelihood(args) -> int:
    from studio.core import media
    from studio.core.datasets import scan
    from studio.core.engine import Job

    engine = _engine(args, with_project=False)
    ckpt, manifest, action = _resolve(engine, args.model, "likelihood", args.action)
    param = _input_param(action, ("image",), ("image",))
    files = scan(args.input) if args.input.is_dir() else [args.input]
    scores, skipped = [], []
    for file in files:
        if args.input.is_dir() and file.suffix.lower() not in media.IMAGE_SUFFIXES:
            continue
        job = engine.execute(Job(manifest.id, action.id, args.model, {param: str(file)}, seed=args.seed or 0))
        if job.error:
            if not args.input.is_dir():
                raise CliError(job.error)
            skipped.append((str(file), job.error))
            continue
        scores.append((str(file), float(job.result.metrics["bits_per_dim"])))
    if not scores:
        raise CliError(f"{args.input}: no readable image to score")
    scores.sort(key=lambda item: item[1])
    if args.json:
        print(json.dumps({"model": ckpt.id, "ranking": scores, "skipped": skipped}, indent=2))
        return 0
    if len(scores) == 1 and not args.input.is_dir():
        print(f"{scores[0][1]:.4f} bits/dim  {scores[0][0]}")
        return 0
    print("bits/dim  file   (most typical first)")
    for file, bpd in scores:
        print(f"{bpd:8.4f}  {file}")
    for _, why in skipped:
        print(f"skipped: {why}", file=sys.stderr)
    return 0


def cmd_train(args) -> int:
    from studio.core.datasets import summarize_folder
    from studio.core.engine import Job

    engine = _engine(args)
    info = engine.registry.by_family(args.family)
    manifest = engine.registry.manifest(info.id)
    action = _pick_action(manifest, "train", None)
    values = _values(action, args.assignments)
    values.update(data=str(args.data), out=str(args.out))
    if args.resume:
        if action.params.get("resume") is None:
            raise CliError(f"{manifest.name} trains in one go; there is nothing to resume")
        values["resume"] = True
    print(summarize_folder(args.data).text(), file=sys.stderr)
    job = _run(engine, Job(manifest.id, action.id, None, values, seed=args.seed, device=args.device or "auto"))
    result = job.result
    if result.text:
        print(result.text)
    for key, value in result.metrics.items():
        print(f"{key}: {value}")
    return 0


def cmd_info(args) -> int:
    from studio.core import media

    meta = media.read_metadata(args.file)
    if meta is None:
        raise CliError(f"{args.file}: carries no Studio metadata")
    print(json.dumps(meta, indent=2, sort_keys=True))
    return 0


def cmd_data(args) -> int:
    from studio.core.paths import user_data_dir
    from studio.data import BUILDERS, build

    if args.data_command == "list":
        for name in BUILDERS:
            print(name)
        return 0
    if not args.name:
        raise CliError(f"name a data set to build: {', '.join(BUILDERS)}")
    out = args.out or user_data_dir() / "datasets" / args.name
    info = build(args.name, out)
    print(f"built {args.name} in {out}: {json.dumps(info.get('splits', {}))}")
    return 0


COMMANDS = {
    "plugins": cmd_plugins, "models": cmd_models, "generate": cmd_generate, "edit": cmd_edit,
    "interpolate": cmd_interpolate, "likelihood": cmd_likelihood, "train": cmd_train,
    "info": cmd_info, "data": cmd_data,
}
