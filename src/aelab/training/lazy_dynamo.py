"""torch.optim without importing ``torch._dynamo``.

Two things in ``torch.optim`` import ``torch._dynamo``, which costs 1.3-2.3 s
of every aelab process that trains (``docs/benchmarks.md``, the whole
command), though a process that never compiles does not need it:

* ``Optimizer`` decorates ``add_param_group`` (run by every optimizer's
  constructor), ``zero_grad``, ``state_dict`` and ``load_state_dict`` with
  ``torch._disable_dynamo``, whose wrapper imports ``torch._dynamo`` on its
  first call to build the "run this without torch.compile" version;
* every optimizer's ``step`` runs inside ``_use_grad_for_differentiable``,
  which imports ``torch._dynamo`` to place two graph breaks around the
  update (no-ops outside torch.compile) and sets grad mode.

While ``torch._dynamo`` is not imported nothing can be compiling, so the
"disabled" function is the function and the graph breaks do nothing.
:func:`install` gives each decorated method the cached "disabled" version
its wrapper looks for first: it runs the original directly while
``torch._dynamo`` is absent and, at the first call after something imported
it, hands over to ``torch._dynamo.disable`` (caching that, as the wrapper
would).  :func:`step` is ``optimizer.step()`` with the update run under
``no_grad`` directly (what the wrapper does), as long as ``torch._dynamo``
is absent and no step hooks are registered; otherwise it is
``optimizer.step()`` itself.  Nothing changes in what the optimizers
compute.  If this torch's wrappers are not the ones described here
(another version), everything is left as it is.
"""
from __future__ import annotations

import sys

import torch
from torch.optim import optimizer as _torch_optimizer

_INSTALLED = False
_RAW_STEPS: dict = {}  # optimizer class -> its step without the grad-mode wrapper (None: not found)


def _disable_wrapper_code():
    """The code object of ``torch._compile._disable_dynamo``'s wrapper, or None."""
    from torch import _compile

    probe = _compile._disable_dynamo(lambda: None)
    return getattr(probe, "__code__", None) if getattr(probe, "__name__", "") == "<lambda>" else None


def _handover(fn, recursive: bool):
    """What the wrapper calls instead of building dynamo's disabled ``fn``."""

    def call(*args, **kwargs):
        dynamo = sys.modules.get("torch._dynamo")
        if dynamo is None:  # nothing can be compiling: the disabled function is the function
            return fn(*args, **kwargs)
        real = dynamo.disable(fn, recursive, wrapping=False)
        fn.__dynamo_disable = real  # as the wrapper caches it
        return real(*args, **kwargs)

    return call


def _wrapped(obj, code):
    """The original function inside a ``_disable_dynamo`` wrapper, or None."""
    if getattr(obj, "__code__", None) is not code or not obj.__closure__:
        return None
    cells = dict(zip(obj.__code__.co_freevars, obj.__closure__))
    fn, recursive = cells.get("fn"), cells.get("recursive")
    return (fn.cell_contents, recursive.cell_contents if recursive else True) if fn else None


def install() -> bool:
    """Give ``torch.optim.Optimizer``'s dynamo-disabled methods their lazy
    disabled version (idempotent); False when this torch does not match."""
    global _INSTALLED
    if _INSTALLED or "torch._dynamo" in sys.modules:
        return _INSTALLED
    code = _disable_wrapper_code()
    if code is None:
        return False
    found = False
    for name in ("add_param_group", "zero_grad", "state_dict", "load_state_dict"):
        inner = _wrapped(getattr(torch.optim.Optimizer, name, None), code)
        if inner is not None:
            fn, recursive = inner
            if getattr(fn, "__dynamo_disable", None) is None:
                fn.__dynamo_disable = _handover(fn, recursive)
            found = True
    _INSTALLED = found
    return found


def _raw_step(cls):
    """``cls.step`` without its wrappers (the profiling hook and
    ``_use_grad_for_differentiable``), or None when they are not torch's own."""
    if cls not in _RAW_STEPS:
        probe = _torch_optimizer._use_grad_for_differentiable(lambda: None)
        fn, raw = getattr(cls, "step", None), None
        while fn is not None and raw is None:
            if getattr(fn, "__code__", None) is probe.__code__:
                raw = getattr(fn, "__wrapped__", None)
            fn = getattr(fn, "__wrapped__", None)
        _RAW_STEPS[cls] = raw
    return _RAW_STEPS[cls]


def _hooked(opt: torch.optim.Optimizer) -> bool:
    return bool(opt._optimizer_step_pre_hooks or opt._optimizer_step_post_hooks
                or _torch_optimizer._global_optimizer_pre_hooks or _torch_optimizer._global_optimizer_post_hooks)


def step(opt: torch.optim.Optimizer) -> None:
    """``opt.step()``, without importing ``torch._dynamo`` when nothing needs it."""
    raw = _raw_step(type(opt))
    if raw is None or "torch._dynamo" in sys.modules or opt.defaults.get("differentiable") or _hooked(opt):
        opt.step()
        return
    with torch.no_grad():  # the wrapper's set_grad_enabled(differentiable=False)
        raw(opt)
    opt._opt_called = True  # what a scheduler's step-tracking wrapper records
