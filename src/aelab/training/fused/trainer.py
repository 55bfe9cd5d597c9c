"""The fused trainer: K solo :class:`~aelab.training.gradient.GradientTrainer` s
stacked into one batched model, their per-epoch bookkeeping run by the
solo code, finished members leaving the stack."""
from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from torch import nn

from ..checkpoint import restore_checkpoint
from ..gradient import GradientTrainer, TrainState
from ...models.family import conditioned, family
from ..objectives import make_objective
from ..registry import methods, trainer
from .allocator import keep_freed_memory
from .forward import _Forward
from .family_losses import LOSSES
from .losses import _Objective
from .optimizer import _FLAGS, _Group, _hypers
from .passes import _Passes
from .stack import _compile, check_stackable, layout

Tensor = torch.Tensor


class FusedGradientTrainer(_Passes):
    """K models of one architecture, trained as one batched model.

    ``models``: K models, each built as its solo run builds it
    (:func:`aelab.pipeline.build` seeds with ``train.seed``), on one device;
    ``train_specs``: their gradient train specs; ``model_specs``: their
    model specs (they pick the objective: family, VAE beta and KL warm-up).
    Members may differ in anything that keeps the shapes: seed, optimizer and
    its hyperparameters, schedule, epochs, early stopping, gradient
    clipping, dropout rates, beta and warm-up; they share the batch size and
    the loss.  :func:`aelab.fused_runs.fused_group` builds the models from configs.

    ``exact``: calibrate the batched kernels against the per-member ones and
    keep the solo rounding of tail-sensitive activations (bitwise equal to
    solo runs on the CPU); ``"auto"``: True on the CPU, False on CUDA.

    ``callbacks``: each member's own callbacks (history, checkpoint,
    trackers), called as the solo epoch loop calls them, with the member's
    model and optimizer up to date -- so a member's run directory fills as
    its solo run's does.  ``restore``: each member's checkpoint to continue
    from (None: a fresh start), read as a solo ``--resume`` reads it; a
    killed group restarted from its members' checkpoints ends as the
    uninterrupted group does.

    ``fit(x, y, x_val, y_val)`` trains every member to its end (as
    :meth:`GradientTrainer.fit` does, from each member's epoch); :meth:`members`
    returns K ordinary :class:`GradientTrainer` s, in the order given.
    """

    def __init__(self, models: list[nn.Module], train_specs: list, model_specs: list, *,
                 callbacks: list[list] | None = None, restore: list[Path | None] | None = None,
                 exact: bool | str = "auto", chunk: int | None = None):
        """Check the members, build their solo trainers (restored from their
        checkpoints), stack their parameters (each optimizer group a
        contiguous slice) and group their optimizers, their state imported."""
        models = list(models)
        if not (len(models) == len(train_specs) == len(model_specs)):
            raise ValueError(f"fused training: {len(models)} models, {len(train_specs)} train specs and "
                             f"{len(model_specs)} model specs")
        check_stackable(models)
        for k, (m, t, s) in enumerate(zip(models, train_specs, model_specs)):
            method = getattr(t, "method", None)
            if method not in methods() or not trainer(method).fuses:
                raise ValueError(f"fused training: member {k}'s train.method {method} does not fuse")
            if s.kind != m.kind:
                raise ValueError(f"member {k}: model spec kind {s.kind} but model kind {m.kind}")
        objective = layout(models[0])[1]
        declared = family(model_specs[0].kind).fused_objective()
        if declared != objective:
            raise ValueError(f"model.kind {model_specs[0].kind}: its objective is not one fused training computes "
                             f"(the family declares fuses_as={declared!r}, its module needs {objective!r})")
        for name in ("batch_size", "loss"):
            values = sorted({getattr(t, name) for t in train_specs})
            if len(values) > 1:
                raise ValueError(f"fused training needs one train.{name} for all members, got {values}")
        self.device = next(models[0].parameters()).device
        self.exact = (self.device.type == "cpu") if exact == "auto" else bool(exact)
        self.K, self.kind = len(models), models[0].kind
        self.batch_size = train_specs[0].batch_size
        self.chunk = chunk
        self.widest = max([max(p.shape) for p in models[0].parameters() if p.dim() == 2] or [1])  # dense;
        # convolutions: their feature maps, measured on the first batch (fit)
        # every member is a real solo trainer: its optimizer and scheduler hold the
        # hyperparameters (and, at the end, the state); its bookkeeping runs each epoch
        callbacks = callbacks or [[] for _ in models]
        self.trainers = [GradientTrainer(m, make_objective(s, t), t, cbs)
                         for m, t, s, cbs in zip(models, train_specs, model_specs, callbacks)]
        for tr, path in zip(self.trainers, restore or []):
            if path is not None:
                restore_checkpoint(path, tr)
        self.model_specs = list(model_specs)  # the objective reads each member's loss weights from its spec
        plan = _compile(models)
        self.forward = _Forward(plan, self.exact)
        index = {id(p): i for i, p in enumerate(models[0].parameters())}
        decoder = getattr(models[0], "decoder", None)
        own = [index[id(p)] for p in decoder.parameters()] if decoder is not None else []  # the RAE's L2 term
        self.objective = _Objective(LOSSES[objective], train_specs[0].loss, getattr(models[0], "num_classes", None),
                                    self.model_specs, own)
        self._rates = {(name, i): step.rates for name, steps in plan.items()
                       for i, step in enumerate(steps) if step.op == "dropout"}
        self._keys = []
        for tr in self.trainers:
            rule = tr.spec.optimizer
            hy = _hypers(tr.optimizer, rule)
            # started members (resumed: their optimizer has stepped) never share a group with fresh ones
            self._keys.append((rule, tuple(hy[f] for f in _FLAGS[rule]), _started(tr.optimizer)))
        # stack order: each optimizer group one contiguous slice (views, no gathers)
        self.active = sorted(range(self.K), key=lambda k: (self._keys[k], k))
        self.names = [n for n, _ in models[0].named_parameters()]
        with torch.no_grad():
            own = [dict(m.named_parameters()) for m in models]
            self.params = [torch.stack([own[k][n].detach() for k in self.active]) for n in self.names]
            mine = [dict(m.named_buffers()) for m in models]
            self.buffer_names = [n for n, _ in models[0].named_buffers()]
            self.buffers = [torch.stack([mine[k][n] for k in self.active]) for n in self.buffer_names]
        self._build_groups()
        self._import()

    # ------------------------------------------------------------ groups
    def _build_groups(self) -> None:
        self.groups: list[tuple[int, int, _Group, list[int]]] = []  # (start, stop, rule, members)
        start = 0
        while start < len(self.active):
            stop = start
            while stop < len(self.active) and self._keys[self.active[stop]] == self._keys[self.active[start]]:
                stop += 1
            members = self.active[start:stop]
            rule = self._keys[members[0]][0]
            hypers = [_hypers(self.trainers[k].optimizer, rule) for k in members]
            self.groups.append((start, stop, _Group(rule, hypers, [p[start:stop] for p in self.params]), members))
            start = stop

    def _import(self) -> None:
        """Resumed members' optimizer state (torch's format, from their
        checkpoints) into their groups' stacks."""
        for _, _, group, members in self.groups:
            for r, k in enumerate(members):
                opt = self.trainers[k].optimizer
                if _started(opt):
                    group.load(r, [opt.state.get(p, {}) for p in self.trainers[k].model.parameters()])

    def _compact(self, done: set[int]) -> None:
        """The finished members leave the stack and their groups."""
        rows = [r for r, k in enumerate(self.active) if k not in done]
        if rows:
            idx = torch.tensor(rows, device=self.device)
            self.params = [p.index_select(0, idx) for p in self.params]
            self.buffers = [b.index_select(0, idx) for b in self.buffers]
        groups, offset = [], 0
        for _, _, group, members in self.groups:
            keep = [r for r, k in enumerate(members) if k not in done]
            if keep:
                group.keep(keep)
                groups.append((offset, offset + len(keep), group, [members[r] for r in keep]))
                offset += len(keep)
        self.groups = groups
        self.active = [k for k in self.active if k not in done]

    # -------------------------------------------------------------- loop
    def fit(self, x_train: Tensor, y_train: Tensor | None, x_val: Tensor, y_val: Tensor | None) -> list[TrainState]:
        """Train every member to its end; returns the K states (order given)."""
        if self.device.type == "cpu":
            keep_freed_memory()  # the stacked batches' memory is reused, not faulted in again
        if any(step.op == "conv" for steps in self.forward.plan.values() for step in steps):
            self.widest = max(self.widest, _widest_activation(self.trainers[0].model, x_train[:1],
                                                              None if y_train is None else y_train[:1]))
        for tr in self.trainers:
            for cb in tr.callbacks:
                cb.on_train_start(tr)
        done = {k for k in self.active if self.trainers[k].state.status != "running"
                or self.trainers[k].spec.epochs <= self.trainers[k].state.epoch}
        for k in done:
            if self.trainers[k].state.status == "running":
                self.trainers[k]._finish()  # resumed at its last epoch, as the solo loop ends it
        if done:
            self._retire(done)
        while self.active:
            self._one_epoch(x_train, y_train, x_val, y_val)
        return [t.state for t in self.trainers]

    def _one_epoch(self, x, y, x_val, y_val) -> None:
        """GradientTrainer._one_epoch for every active member at once."""
        start = time.perf_counter()
        trainers = [self.trainers[k] for k in self.active]
        epochs = [t.state.epoch for t in trainers]
        train = self._train_epoch(x, y, epochs)
        val = self._evaluate(x_val, y_val, epochs) if len(x_val) else {}
        seconds = (time.perf_counter() - start) / len(trainers)  # the fused epoch's wall time, shared out
        for r, (tr, epoch) in enumerate(zip(trainers, epochs)):
            tv = {name: v[r] for name, v in train.items()}
            vv = {name: v[r] for name, v in val.items()}
            row = {"epoch": epoch + 1, "train_loss": tv.pop("loss"), "val_loss": vv.pop("loss", math.nan),
                   "lr": tr.optimizer.param_groups[0]["lr"]}
            row.update({f"train_{name}": v for name, v in tv.items()})
            row.update({f"val_{name}": v for name, v in vv.items()})
            row["seconds"] = seconds
            tr.state.history.append(row)
            tr.state.epoch = epoch + 1
        self._write_back(self.active)  # the solo bookkeeping reads (and may restore) the model's weights
        for tr in trainers:
            tr._after_epoch(tr.state.history[-1], has_val=len(x_val) > 0)
        if any(tr.callbacks for tr in trainers):
            self._export(set(self.active))  # a checkpoint reads the member's torch optimizer
        for tr in trainers:
            for cb in tr.callbacks:
                cb.on_epoch_end(tr)
            if tr.state.status == "running" and tr.state.epoch >= tr.spec.epochs:
                tr._finish()  # as epoch_loop ends a run: best weights restored when kept
        done = {k for k in self.active if self.trainers[k].state.status != "running"}
        if done:
            self._retire(done)

    def _retire(self, done: set[int]) -> None:
        self._write_back([k for k in self.active if k in done and self.trainers[k].state.status == "running"])
        self._export(done)
        for k in sorted(done):
            for cb in self.trainers[k].callbacks:
                cb.on_train_end(self.trainers[k])
        self._compact(done)


    # ----------------------------------------------------------- members
    def _write_back(self, members) -> None:
        """Copy members' stacked weights (and buffers) into their own models."""
        rows = {k: r for r, k in enumerate(self.active)}
        with torch.no_grad():
            for k in members:
                own = dict(self.trainers[k].model.named_parameters())
                for name, p in zip(self.names, self.params):
                    own[name].copy_(p[rows[k]])
                mine = dict(self.trainers[k].model.named_buffers())
                for name, b in zip(self.buffer_names, self.buffers):
                    mine[name].copy_(b[rows[k]])

    def _export(self, members) -> None:
        """Members' optimizer state into their torch optimizers, in torch's format."""
        for _, _, group, group_members in self.groups:
            for r, k in enumerate(group_members):
                if k in members:
                    opt = self.trainers[k].optimizer
                    params = list(self.trainers[k].model.parameters())
                    for p, entry in zip(params, group.export(r, len(params))):
                        if entry:
                            opt.state[p] = entry

    def members(self) -> list[GradientTrainer]:
        """The K members in the order given: ordinary trainers with the final
        weights in their models (the best ones when early stopping kept them),
        their optimizer state, scheduler and solo-format ``TrainState``."""
        if self.active:  # fit not run to the end: hand out the current state
            self._write_back(self.active)
            self._export(set(self.active))
        return list(self.trainers)


def _started(optimizer: torch.optim.Optimizer) -> bool:
    """Whether the optimizer has stepped (a resumed member's); Adagrad holds
    state from its construction, with step 0."""
    return any(float(st.get("step", 1)) > 0 for st in optimizer.state.values())


@torch.no_grad()
def _widest_activation(model: nn.Module, x: Tensor, y: Tensor | None) -> int:
    """The most floats any layer of ``model`` outputs per sample (eval mode: no noise drawn)."""
    sizes, was_training = [0], model.training
    hooks = [m.register_forward_hook(lambda _, __, out: sizes.append(out[0].numel()))
             for m in model.modules() if not list(m.children()) and not isinstance(m, nn.Identity)]
    try:
        model.eval()
        model(x, *conditioned(model, y))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return max(sizes)
