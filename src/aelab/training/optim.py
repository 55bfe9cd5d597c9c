"""Optimizers and learning-rate schedules by name, with their parameters."""
from __future__ import annotations

import torch

from ..errors import ConfigError
from ..spec import TrainSpec
from .lazy_dynamo import install as _lazy_dynamo

_lazy_dynamo()  # optimizers built without importing torch._dynamo (seconds per process)

_OPTIMIZERS = {
    "sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop, "adagrad": torch.optim.Adagrad,
    "adadelta": torch.optim.Adadelta, "adamax": torch.optim.Adamax, "nadam": torch.optim.NAdam,
}


# Where Keras's defaults differ from PyTorch's (keras.optimizers, Keras 3):
# reproducing a Keras tutorial's numbers needs them.
KERAS_DEFAULTS = {
    "adam": {"eps": 1e-7}, "adamw": {"eps": 1e-7}, "adamax": {"eps": 1e-7}, "nadam": {"eps": 1e-7},
    "rmsprop": {"alpha": 0.9, "eps": 1e-7},
    "adagrad": {"initial_accumulator_value": 0.1, "eps": 1e-7},
    "adadelta": {"rho": 0.95, "eps": 1e-7},
}


def make_optimizer(params, spec: TrainSpec) -> torch.optim.Optimizer:
    """The optimizer named in ``spec`` with lr, weight decay, momentum (SGD,
    RMSprop), Keras's defaults when ``optimizer_defaults: keras``, and any
    extra ``optimizer_args`` (e.g. ``betas``, ``eps``), which win."""
    kwargs: dict = {"lr": spec.lr, "weight_decay": spec.weight_decay}
    if spec.optimizer in ("sgd", "rmsprop"):
        kwargs["momentum"] = spec.momentum
    if spec.optimizer == "sgd":
        kwargs["nesterov"] = spec.nesterov
    if spec.optimizer_defaults == "keras":
        kwargs.update(KERAS_DEFAULTS.get(spec.optimizer, {}))
    kwargs.update({k: tuple(v) if isinstance(v, (list, tuple)) else v
                   for k, v in spec.optimizer_args.items()})
    try:
        return _OPTIMIZERS[spec.optimizer](params, **kwargs)
    except TypeError as e:
        raise ConfigError(f"train.optimizer_args: {spec.optimizer} does not accept them ({e})") from None
    except ValueError as e:  # torch's own range checks: a beta of 1.5, a negative eps
        raise ConfigError(f"train.optimizer_args: {spec.optimizer} refuses them: {e}") from None


def make_scheduler(opt: torch.optim.Optimizer, spec: TrainSpec):
    """A per-epoch LR schedule, or None.  ``plateau`` steps on validation loss."""
    a, s = spec.schedule_args, torch.optim.lr_scheduler
    if spec.schedule == "none":
        return None
    if spec.schedule == "step":
        return s.StepLR(opt, step_size=int(a.get("step_size", 10)), gamma=a.get("gamma", 0.1))
    if spec.schedule == "exponential":
        return s.ExponentialLR(opt, gamma=a.get("gamma", 0.95))
    if spec.schedule == "cosine":
        return s.CosineAnnealingLR(opt, T_max=int(a.get("t_max", spec.epochs)), eta_min=a.get("eta_min", 0.0))
    return s.ReduceLROnPlateau(opt, factor=a.get("factor", 0.5), patience=int(a.get("patience", 3)))
