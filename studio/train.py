"""Train a family's model from the command line, alone or under HF Accelerate.

    python -m studio.train FAMILY --data DIR --out DIR [--set steps=2000 --set lr=2e-4] [--resume]
    accelerate launch --multi_gpu --num_processes 8 -m studio.train FAMILY --data DIR --out DIR
    accelerate launch --multi_gpu --num_processes 2 -m studio.train ...   (no GPU: 2 CPU processes, gloo)

It runs the plugin's ``train`` action through the engine, exactly as the GUI does. When started
by ``accelerate launch`` (or with ``--accelerate``) it builds an ``accelerate.Accelerator`` and
the one training loop (studio.core.training) runs under it: DDP model and optimizer, each
process takes its share of every global batch, only the main process writes and prints.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from studio.core import training
from studio.core.registry import BUILTINS


def launched_by_accelerate() -> bool:
    return "LOCAL_RANK" in os.environ or any(key.startswith("ACCELERATE_") for key in os.environ)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m studio.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("family", metavar="FAMILY", help="family name or plugin id (see `studio plugins`)")
    parser.add_argument("--data", type=Path, required=True, metavar="DIR", help="folder of images or audio")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="run folder: checkpoints and the model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (ignored under Accelerate)")
    parser.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="K=V",
                        help="a train parameter, e.g. steps=2000 (repeatable)")
    parser.add_argument("--plugin", dest="packages", action="append", default=[], metavar="PACKAGE",
                        help="also load this plugin package (one not installed through entry points)")
    parser.add_argument("--accelerate", action="store_true", help="use Accelerate even when not launched by it")
    return parser


def main(argv: list[str] | None = None) -> int:
    from studio.core.engine import Engine, Job, JobState
    from studio.core.params import ParamError
    from studio.core.registry import Registry

    args = build_parser().parse_args(argv)
    accelerator = None
    if args.accelerate or launched_by_accelerate():
        import torch
        from accelerate import Accelerator

        # without a GPU, several processes train on the CPU over gloo (Accelerate's MULTI_CPU)
        accelerator = Accelerator(cpu=not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1)
    main_process = accelerator is None or accelerator.is_main_process
    registry = Registry(builtins=BUILTINS + tuple(args.packages))
    try:
        info = registry.get(args.family) if args.family in registry.plugins else registry.by_family(args.family)
        manifest = registry.manifest(info.id)
        action = manifest.actions_for("train")[0] if manifest.actions_for("train") else None
        if action is None:
            raise KeyError(f"{manifest.name} has no train action")
        values = action.params.parse_assignments(args.assignments)
    except (KeyError, ParamError) as exc:
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    values.update(data=str(args.data), out=str(args.out))
    if args.resume:
        values["resume"] = True
    engine = Engine(registry, None, device=args.device)
    job = Job(manifest.id, action.id, None, values, seed=args.seed, device=args.device)

    def report(event: str, j: Job) -> None:
        if main_process and event == "progress" and (j.step == j.total or (j.metrics and j.history
                                                                          and j.history[-1][0] == j.step)):
            metrics = " ".join(f"{k}={v:.4g}" for k, v in j.metrics.items())
            eta = f" eta {j.eta:.0f}s" if j.eta is not None else ""
            print(f"{j.step}/{j.total} {metrics}{eta} {j.message}".rstrip(), flush=True)

    engine.subscribe(report)
    previous = signal.signal(signal.SIGINT, lambda *_: job.cancel())
    try:
        with training.distributed(accelerator):
            engine.execute(job)
    finally:
        signal.signal(signal.SIGINT, previous)
    if accelerator is not None:
        accelerator.end_training()
    if job.state == JobState.CANCELLED:
        print("cancelled; the run folder keeps its last checkpoint (continue with --resume)", file=sys.stderr)
        return 130
    if job.state == JobState.FAILED:
        print(f"error: {job.error}", file=sys.stderr)
        return 1
    if main_process and job.result is not None:
        print(job.result.text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
