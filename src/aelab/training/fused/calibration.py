"""The kernel calibration that makes the stacked computation exact: for each
(operation, shape), whether the batched kernel reproduces the per-member
(solo) one bit for bit -- else the caller runs it per member."""
from __future__ import annotations

from typing import ClassVar

import torch

Tensor = torch.Tensor


class _Calibration:
    """Which batched kernel reproduces the per-member (solo) computation bit
    for bit at a given shape: each candidate is tried once per (operation,
    shapes) against the reference, the first exact one is kept; None means
    none is, and the caller runs the reference itself.  The trial inputs are
    random, plus -- for elementwise kernels -- values on which the kernel's
    vectorised body and its scalar loop disagree (:func:`_witnesses`), so a
    member's scalar tail computed in the wrong path cannot match by luck."""

    known: ClassVar[dict] = {}  # process-wide: a property of the kernels, not of a trainer

    def __init__(self, exact: bool):
        self.exact = exact

    def pick(self, key: tuple, candidates, reference, shapes, device, dtype, witnesses=None) -> int | None:
        """The index of the first candidate equal to ``reference`` on the trial
        inputs of ``shapes`` (0 when not exact), or None; decided once per key."""
        if not self.exact:
            return 0
        key = (device.type, dtype, torch.get_num_threads()) + key
        if key not in self.known:
            gen = torch.Generator().manual_seed(len(self.known) + 1)
            draws = [[torch.randn(s, generator=gen, dtype=dtype).mul_(2) for s in shapes]]
            if witnesses is not None:  # elementwise: all inputs of one shape, drawn jointly
                pick = torch.randint(len(witnesses[0]), shapes[0], generator=gen)
                draws.append([w[pick] for w in witnesses])
            draws = [[a.to(device) for a in args] for args in draws]
            wants = [reference(*args) for args in draws]
            self.known[key] = next((i for i, c in enumerate(candidates)
                                    if all(torch.equal(c(*args), want) for args, want in zip(draws, wants))), None)
        return self.known[key]

    def batched(self, key: tuple, batched, looped, *shapes, device, dtype) -> bool:
        return self.pick(key, [batched], looped, shapes, device, dtype) == 0


_WITNESSES: dict = {}


def _witnesses(key, fn, n_inputs: int, dtype) -> list[Tensor] | None:
    """Inputs (``n_inputs`` 1-D tensors, indexed jointly) on which the
    elementwise ``fn`` rounds differently in its vectorised body and in
    TensorIterator's scalar loop (a strided input runs the latter), found
    once per op among 196,608 random values; None when they never differ."""
    if key not in _WITNESSES:
        gen = torch.Generator().manual_seed(0)
        scale = torch.tensor([0.5, 2.0, 8.0], dtype=dtype).repeat_interleave(1 << 16)
        xs = [torch.randn(3 << 16, generator=gen, dtype=dtype) * scale for _ in range(n_inputs)]
        differ = fn(*xs) != fn(*(torch.stack([x, x], 1)[:, 0] for x in xs))
        _WITNESSES[key] = [x[differ] for x in xs] if bool(differ.any()) else None
    return _WITNESSES[key]


def _per_member(fn, *args) -> Tensor:
    """``fn`` on each member's fresh (solo-like) slices, stacked."""
    return torch.stack([fn(*(a[k].clone() for a in args)) for k in range(len(args[0]))])
