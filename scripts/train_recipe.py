"""Train a shipped model from its recipe: ``python scripts/train_recipe.py scripts/recipes/ID.json``.

A recipe names the family, the data folders and the train action's parameters; this runs the
family's train action through the engine, exactly as ``studio train`` does (the equivalent
command is written into the model card), into ``models/ID``. The resumable training state is
removed afterwards so only the model ships.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPRODUCE = """
## Reproduce

The recipe is `{recipe}`; from the repository root:

```
python scripts/train_recipe.py {recipe}
```

It runs the command above through the engine on the CPU ({threads} torch thread), writing this folder.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--steps", type=int, help="stop at this step instead of the recipe's (the schedule is constant,"
                        " so this equals a run with steps=N)")
    parser.add_argument("--resume", action="store_true", help="continue from models/ID/training_state.safetensors")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import torch

    from studio.core.engine import Engine, Job
    from studio.core.registry import Registry
    from studio.core.training import STATE_FILE

    torch.set_num_threads(args.threads)
    recipe = json.loads(args.recipe.read_text())
    out = ROOT / "models" / recipe["id"]
    params = {**recipe["params"], "name": recipe["id"], "out": str(out.relative_to(ROOT))}
    if args.resume:  # only families whose train action takes ``resume``
        params["resume"] = True
    if args.steps:
        params["steps"] = args.steps
    registry = Registry()
    plugin = registry.by_family(recipe["family"]).id
    engine = Engine(registry, device="cpu")
    started = time.monotonic()

    def report(event: str, job: Job) -> None:
        if event == "progress" and job.metrics and job.step % 100 == 0:
            print(f"step {job.step}/{job.total} {job.metrics} {time.monotonic() - started:.0f}s", flush=True)

    engine.subscribe(report)
    job = engine.execute(Job(plugin, "train", None, params, seed=recipe.get("seed", 0), device="cpu"))
    if job.error:
        print(job.error, job.details, file=sys.stderr)
        return 1
    (out / STATE_FILE).unlink(missing_ok=True)
    card = out / "MODEL_CARD.md"
    recipe_path = args.recipe.resolve().relative_to(ROOT)
    card.write_text(card.read_text() + REPRODUCE.format(recipe=recipe_path, threads=args.threads))
    print(job.result.text)
    print(json.dumps(job.result.metrics, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
