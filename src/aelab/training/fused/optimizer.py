"""The batched optimizer: members grouped by torch optimizer class and branch
flags, their hyperparameters read from the real torch optimizers, their
state stacked -- and exported back in torch's own format."""
from __future__ import annotations

import numpy as np
import torch

from .rules import _Rules

Tensor = torch.Tensor


class _Group(_Rules):
    """Members sharing a torch optimizer class and its branch flags (weight
    decay on/off, momentum on/off, nesterov, amsgrad, ...): one rule, run on
    their contiguous slice of the stack with per-member values -- all of
    them, or the rows of one chunk of members (:meth:`step`'s ``rows``).
    The rules themselves are :class:`~.rules._Rules`' methods."""

    def __init__(self, rule: str, hypers: list[dict], params: list[Tensor]):
        """The group's state, zero (Adagrad: each member's initial accumulator),
        shaped like ``params``, the group's slices of the stacked parameters."""
        self.rule, self.hypers = rule, hypers
        self.steps = [0] * len(hypers)
        self._memo: dict = {}
        self.state: dict[str, list[Tensor | None]] = {}
        self.mu_product = None
        h0 = hypers[0]
        zeros = lambda: [torch.zeros_like(p) for p in params]
        if rule in ("adam", "adamw"):
            self.state["exp_avg"], self.state["exp_avg_sq"] = zeros(), zeros()
            if h0["amsgrad"]:
                self.state["max_exp_avg_sq"] = zeros()
        elif rule == "sgd" and h0["momentum"] != 0:
            self.state["momentum_buffer"] = zeros()  # the first step copies the gradient in
        elif rule == "rmsprop":
            self.state["square_avg"] = zeros()
            if h0["momentum"] > 0:
                self.state["momentum_buffer"] = zeros()
            if h0["centered"]:
                self.state["grad_avg"] = zeros()
        elif rule == "adagrad":
            self.state["sum"] = [torch.stack([torch.full_like(p[0], h["initial_accumulator_value"])
                                              for h in hypers]) for p in params]
        elif rule == "adadelta":
            self.state["square_avg"], self.state["acc_delta"] = zeros(), zeros()
        elif rule == "adamax":
            self.state["exp_avg"], self.state["exp_inf"] = zeros(), zeros()
        elif rule == "nadam":
            self.state["exp_avg"], self.state["exp_avg_sq"] = zeros(), zeros()
            self.mu_product = [np.float32(1.0)] * len(hypers)  # torch: a float32 tensor per parameter

    def keep(self, rows: list[int]) -> None:
        """Only the members at ``rows`` (positions in this group) go on."""
        self._memo = {}
        self.hypers = [self.hypers[r] for r in rows]
        self.steps = [self.steps[r] for r in rows]
        if self.mu_product is not None:
            self.mu_product = [self.mu_product[r] for r in rows]
        for name, tensors in self.state.items():
            if tensors:
                idx = torch.tensor(rows, device=tensors[0].device)
                self.state[name] = [t.index_select(0, idx) for t in tensors]

    def export(self, row: int, n_params: int) -> list[dict]:
        """Member ``row``'s state per parameter, in torch's own format (SGD
        without momentum keeps none)."""
        out = []
        if self.steps[row] == 0 and self.rule != "adagrad":
            return [{} for _ in range(n_params)]  # torch holds no state before the first step
        for i in range(n_params):
            entry = {}
            if self.rule != "sgd":
                entry["step"] = torch.tensor(float(self.steps[row]), dtype=torch.float32)
            for name, tensors in self.state.items():
                entry[name] = tensors[i][row].clone()
            if self.rule == "nadam":
                entry["mu_product"] = torch.tensor(float(self.mu_product[row]), dtype=torch.float32)
            out.append(entry)
        return out

    def load(self, row: int, entries: list[dict]) -> None:
        """Member ``row``'s state from torch's format, one entry per parameter
        (a resumed member's optimizer): the inverse of :meth:`export`.  SGD
        keeps no step count; a momentum buffer means it has stepped."""
        first = next((e for e in entries if e), None)
        if first is None:
            return
        self._memo = {}
        self.steps[row] = int(float(first["step"])) if "step" in first else 1
        with torch.no_grad():
            for i, entry in enumerate(entries):
                for name, tensors in self.state.items():
                    if entry.get(name) is None:
                        raise ValueError(f"fused training: a resumed {self.rule} state lacks '{name}' "
                                         f"(parameter {i})")
                    tensors[i][row].copy_(entry[name])
        if self.rule == "nadam":
            self.mu_product[row] = np.float32(float(first["mu_product"]))

    # ------------------------------------------- steps (the rules: rules.py)
    @torch.no_grad()
    def step(self, params: list[Tensor], grads: list[Tensor], lrs: list[float],
             rows: tuple[int, int] | None = None) -> None:
        """One optimizer step of the group's members ``rows`` (default: all):
        ``params``/``grads`` are their slices, ``lrs`` their learning rates."""
        r0, r1 = rows or (0, len(self.hypers))
        self._r = slice(r0, r1)
        for r in range(r0, r1):
            self.steps[r] += 1
        getattr(self, "_" + ("adam" if self.rule == "adamw" else self.rule))(params, grads, lrs)


# Branch flags of each rule: members differing in one of them run in different groups.
_FLAGS = {
    "adam": ("amsgrad", "maximize", "decoupled_weight_decay", "wd_on"),
    "adamw": ("amsgrad", "maximize", "decoupled_weight_decay", "wd_on"),
    "sgd": ("maximize", "nesterov", "momentum_on", "wd_on"),
    "rmsprop": ("maximize", "centered", "momentum_on", "wd_on"),
    "adagrad": ("maximize", "wd_on"),
    "adadelta": ("maximize", "wd_on"),
    "adamax": ("maximize", "wd_on"),
    "nadam": ("maximize", "decoupled_weight_decay", "wd_on"),
}
_UNSUPPORTED = ("foreach", "fused", "capturable", "differentiable")


def _hypers(optimizer: torch.optim.Optimizer, rule: str) -> dict:
    """The optimizer's hyperparameters (what make_optimizer built, Keras
    defaults and optimizer_args included), flattened for the rules."""
    if len(optimizer.param_groups) != 1:
        raise ValueError("fused training: one parameter group per optimizer")
    g = dict(optimizer.param_groups[0])
    for key in _UNSUPPORTED:
        if g.get(key):
            raise ValueError(f"train.optimizer_args: fused training mirrors torch's single-tensor "
                             f"{rule} update; {key}=True is not supported")
    if torch.is_tensor(g["lr"]):
        raise ValueError("fused training: a tensor learning rate is not supported")
    if "betas" in g:
        g["betas_1"], g["betas_2"] = (float(b) for b in g["betas"])
    g["wd_on"] = g.get("weight_decay", 0) != 0
    g["momentum_on"] = g.get("momentum", 0) != 0
    g.setdefault("maximize", False)
    g.setdefault("decoupled_weight_decay", rule == "adamw")
    return g
