"""``aelab train CONFIG --repeats N``: N seeds of one config, trained as one.

Seeds ``train.seed, train.seed + 1, ...`` of the config are trained fused
(:mod:`aelab.training.fused`: the N models stacked into one batched
computation, each member exactly the run it would be alone) when the model
stacks, else one after another with a one-line warning saying why.  Each
seed is an ordinary run directory ``OUT/seed-<seed>/`` (config, history,
model, metrics, figures, report), and ``OUT/repeats.json`` and
``OUT/repeats.md`` hold every numeric metric's mean, standard deviation,
minimum and maximum over the seeds.

Not yet: the group is not checkpointed, so an interruption or a failure
undoes the whole output (run the command again).
"""
from __future__ import annotations

import math
import statistics
import time
import warnings
from pathlib import Path

from . import interrupts, threads
from .atomic import write_text
from .data import load_dataset
from .errors import ConfigError, RunDirError
from .outdir import check_dir, writing
from .pipeline import finish, resolve_device, resolved
from .runs import HISTORY, Run, prepare_new, write_config, write_json
from .spec import Config, seeded
from .training.callbacks import HistoryCallback

SUMMARY, TABLE = "repeats.json", "repeats.md"


def seed_dir(out: Path, cfg: Config) -> Path:
    return out / f"seed-{cfg.train.seed}"


def train_repeats(cfg: Config, repeats: int, out: Path) -> dict:
    """Train ``repeats`` seeds of ``cfg`` into ``out``; returns the summary."""
    if repeats < 1:
        raise ConfigError(f"--repeats {repeats}: expected at least 1")
    data = load_dataset(cfg.data)
    cfg = resolved(cfg, data, resuming=False)
    cfgs = [seeded(cfg, k) for k in range(repeats)]
    check_dir(out)
    if (out / SUMMARY).exists():
        raise RunDirError(f"--out {out}: already holds repeated runs; choose another --out")
    for c in cfgs:
        prepare_new(seed_dir(out, c))
    started = time.perf_counter()
    with interrupts.hint(f"nothing of the fused group was kept in {out}; run the command again"), \
            writing(out, "--out", keep_on_interrupt=lambda: False), threads.using(cfg.train.threads):
        runs, how = _train(cfgs, data, out)
        summary = summarize(runs, how, time.perf_counter() - started)
        write_json(out / SUMMARY, summary)
        write_text(out / TABLE, markdown(summary))
    return summary | {"path": str(out)}


def _train(cfgs: list[Config], data, out: Path) -> tuple[list[Run], str]:
    """Fused when the models stack, else one run after another."""
    from .pipeline import build, fit, tensors
    device = resolve_device(cfgs[0].train.device)
    for c in cfgs:
        seed_dir(out, c).mkdir(parents=True, exist_ok=True)
        write_config(seed_dir(out, c), c)
    try:
        fused = fused_group(cfgs, data, device)
    except ValueError as e:
        warnings.warn(f"--repeats: trained one after another, not fused ({' '.join(str(e).split())[:200]})",
                      stacklevel=3)
        trained = [fit(build(c, data, device, warn=False), c, data, [HistoryCallback(seed_dir(out, c) / HISTORY)])
                   for c in cfgs]
        return [finish(seed_dir(out, c), c, data, t.model, t.state, device) for c, t in zip(cfgs, trained)], \
            "one after another"
    fused.fit(*tensors(data, device))
    runs = []
    for c, member in zip(cfgs, fused.members()):
        HistoryCallback(seed_dir(out, c) / HISTORY).on_epoch_end(member)
        runs.append(finish(seed_dir(out, c), c, data, member.model, member.state, device))
    return runs, "fused"


def fused_group(cfgs: list[Config], data, device=None, **kwargs):
    """A :class:`~aelab.training.fused.FusedGradientTrainer` of the models of
    ``cfgs``, each built as its solo run builds it (:func:`aelab.pipeline.build`:
    checks, then ``torch.manual_seed(seed)``); a ValueError when they do not stack."""
    from .pipeline import build
    from .training.fused import FusedGradientTrainer
    device = device or resolve_device(cfgs[0].train.device)
    models = [build(c, data, device, warn=False) for c in cfgs]
    return FusedGradientTrainer(models, [c.train for c in cfgs], [c.model for c in cfgs], **kwargs)


def summarize(runs: list[Run], how: str, seconds: float) -> dict:
    """Mean, standard deviation, min and max of every numeric metric all runs have."""
    keys = [k for k, v in runs[0].metrics.items() if _number(v) and all(_number(r.metrics.get(k)) for r in runs)]
    stats = {}
    for k in keys:
        values = [float(r.metrics[k]) for r in runs]
        stats[k] = {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                    "min": min(values), "max": max(values)}
    return {"repeats": len(runs), "trained": how, "seconds": seconds,
            "seeds": [r.config.train.seed for r in runs], "runs": [str(r.path) for r in runs],
            "statuses": [r.status for r in runs], "metrics": stats}


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def markdown(summary: dict) -> str:
    """The summary as a table: metric, mean ± std, min, max."""
    head = (f"{summary['repeats']} seeds ({', '.join(map(str, summary['seeds']))}), trained {summary['trained']} "
            f"in {summary['seconds']:.1f} s\n\n| metric | mean ± std | min | max |\n|---|---|---|---|\n")
    rows = "".join(f"| {k} | {s['mean']:.4g} ± {s['std']:.2g} | {s['min']:.4g} | {s['max']:.4g} |\n"
                   for k, s in summary["metrics"].items())
    return head + rows
