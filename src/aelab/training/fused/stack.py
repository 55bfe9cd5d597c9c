"""What can be stacked, and the stacked model's plan: models of one kind and
architecture (:func:`check_stackable`), split into their parts (body, heads,
decoder) and compiled into steps over ``(K, N, ...)`` tensors
(:func:`_compile`)."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ...models.autoencoder import VAE, Autoencoder, Classifier
from ...models.layers import Reshape
from ..population import _leaves


def check_stackable(models: list[nn.Module]) -> None:
    """Refuse, in one ValueError naming the first difference, models that
    cannot be stacked: other parameter names or shapes, other layers."""
    if not models:
        raise ValueError("fused training needs at least one model")
    ref = list(models[0].named_parameters())
    if not ref:
        raise ValueError("fused training: the models have no parameters to train")
    for k, model in enumerate(models[1:], 1):
        if type(model) is not type(models[0]):
            raise ValueError(f"fused training needs models of one kind: model {k} is {type(model).__name__}, "
                             f"model 0 is {type(models[0]).__name__}")
        mine = list(model.named_parameters())
        for (name0, p0), (name, p) in zip(ref, mine):
            if name != name0:
                raise ValueError(f"fused training needs models of one architecture: model {k} has parameter "
                                 f"'{name}' where model 0 has '{name0}'")
            if p.shape != p0.shape:
                raise ValueError(f"fused training needs models of one shape: parameter '{name}' is "
                                 f"{tuple(p.shape)} in model {k} but {tuple(p0.shape)} in model 0")
        theirs = [(n, tuple(b.shape)) for n, b in model.named_buffers()]
        ours = [(n, tuple(b.shape)) for n, b in models[0].named_buffers()]
        if theirs != ours:
            raise ValueError(f"fused training needs models of one architecture: model {k}'s buffers "
                             f"{theirs} differ from model 0's {ours}")
        if len(mine) != len(ref):
            extra = (mine if len(mine) > len(ref) else ref)[min(len(mine), len(ref))][0]
            raise ValueError(f"fused training needs models of one architecture: parameter '{extra}' is in "
                             f"{'model ' + str(k) if len(mine) > len(ref) else 'model 0'} only")
        if ref and mine[0][1].device != ref[0][1].device:
            raise ValueError(f"fused training needs models on one device: model {k} is on "
                             f"{mine[0][1].device}, model 0 on {ref[0][1].device}")
        for i, (a, b) in enumerate(zip(_all_leaves(models[0]), _all_leaves(model))):
            if _signature(a) != _signature(b):
                raise ValueError(f"fused training needs models of one architecture: layer {i} is {b!r} in "
                                 f"model {k} but {a!r} in model 0")


def architecture(model: nn.Module) -> list | None:
    """What models must share to stack, as data (:func:`check_stackable`'s
    criterion): the module type, parameter names and shapes, and the layers
    (dropout rates aside); None for a model no layout covers."""
    try:
        leaves = _all_leaves(model)
    except ValueError:
        return None
    return [type(model).__name__, [(n, tuple(p.shape)) for n, p in model.named_parameters()],
            [_signature(leaf) for leaf in leaves]]


def _signature(m: nn.Module) -> str:
    return "Dropout" if isinstance(m, nn.Dropout) else repr(m)  # a dropout rate is a per-member value


# The module layouts that stack: each names its parts (in parameter order)
# and the objective that reads them (losses._Objective).  A family whose
# model is built from one of these modules stacks, whatever its kind.
LAYOUTS = ((VAE, ("body", "to_mu", "to_logvar", "decoder"), "variational"),
           (Autoencoder, ("body", "to_latent", "decoder"), "reconstruct"),
           (Classifier, ("body", "head"), "classify"))


def layout(model: nn.Module) -> tuple[dict[str, nn.Module], str]:
    """The stackable parts of ``model`` and the name of its objective.  The
    module's type must be one of :data:`LAYOUTS` exactly, or declare its
    own ``fused_layout = (parts, objective)`` in its class body (the
    conditional VAE, whose module lives with its family): a subclass (a
    denoising or contractive autoencoder, say) may train under another
    objective, which the fused losses do not know."""
    own = type(model).__dict__.get("fused_layout")
    if own is not None:
        parts, objective = own
        return {name: getattr(model, name) for name in parts}, objective
    for module, parts, objective in LAYOUTS:
        if type(model) is module:
            return {name: getattr(model, name) for name in parts}, objective
    raise ValueError(f"fused training covers the {', '.join(m.__name__ for m, _, _ in LAYOUTS)} modules, not "
                     f"{type(model).__name__}")


def _parts(model: nn.Module) -> dict[str, nn.Module]:
    return layout(model)[0]


def _all_leaves(model: nn.Module) -> list[nn.Module]:
    return [leaf for part in _parts(model).values() for leaf in _leaves(part)]


@dataclass
class _Step:
    op: str  # linear | conv | batchnorm | act | per_sample | dropout | flatten | reshape (forward.RUN)
    module: nn.Module | None = None
    weight: int = -1
    bias: int | None = None
    rates: tuple[float, ...] = ()  # dropout: each member's rate
    shape: tuple[int, ...] = ()
    buffers: tuple[int, ...] = ()  # batch norm: running mean, running variance, batches tracked


_ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.Identity)
_PER_SAMPLE = (nn.Softmax, nn.MaxPool2d, nn.Upsample, nn.AdaptiveMaxPool2d)


def _compile(models: list[nn.Module]) -> dict[str, list[_Step]]:
    """Each part of the model (body, heads, decoder) as steps over (K, N, ...) tensors."""
    index = {id(p): i for i, p in enumerate(models[0].parameters())}
    buffers = {id(b): i for i, b in enumerate(models[0].buffers())}
    parts = [_parts(m) for m in models]
    plan = {}
    for name, part in parts[0].items():
        steps = []
        others = [_leaves(p[name]) for p in parts]
        for j, leaf in enumerate(_leaves(part)):
            if isinstance(leaf, nn.Linear):
                steps.append(_Step("linear", leaf, index[id(leaf.weight)],
                                   index[id(leaf.bias)] if leaf.bias is not None else None))
            elif isinstance(leaf, (nn.Conv2d, nn.ConvTranspose2d)):
                if leaf.groups != 1 or leaf.padding_mode != "zeros":
                    raise ValueError(f"fused training: no rule for {leaf!r}")
                steps.append(_Step("conv", leaf, index[id(leaf.weight)],
                                   index[id(leaf.bias)] if leaf.bias is not None else None))
            elif isinstance(leaf, (nn.BatchNorm1d, nn.BatchNorm2d)):
                steps.append(_Step("batchnorm", leaf, index[id(leaf.weight)] if leaf.affine else -1,
                                   index[id(leaf.bias)] if leaf.affine else None,
                                   buffers=tuple(buffers[id(b)] for b in (leaf.running_mean, leaf.running_var,
                                                                          leaf.num_batches_tracked))
                                   if leaf.track_running_stats else ()))
            elif isinstance(leaf, nn.Dropout):
                steps.append(_Step("dropout", leaf, rates=tuple(float(o[j].p) for o in others)))
            elif isinstance(leaf, nn.Flatten):
                if leaf.start_dim != 1 or leaf.end_dim != -1:
                    raise ValueError(f"fused training: no rule for {leaf!r}")
                steps.append(_Step("flatten"))
            elif isinstance(leaf, (Reshape, nn.Unflatten)):
                shape = leaf.shape if isinstance(leaf, Reshape) else tuple(leaf.unflattened_size)
                if isinstance(leaf, nn.Unflatten) and leaf.dim != 1:
                    raise ValueError(f"fused training: no rule for {leaf!r}")
                steps.append(_Step("reshape", shape=tuple(shape)))
            elif isinstance(leaf, _ELEMENTWISE):
                steps.append(_Step("act", leaf))
            elif isinstance(leaf, _PER_SAMPLE):
                steps.append(_Step("per_sample", leaf))
            else:
                raise ValueError(f"fused training has no batched rule for layer {type(leaf).__name__} "  # noqa: TRY004
                                 f"(dense and convolution layers, batch norm, activations, dropout, pooling "
                                 f"and reshapes only)")
        plan[name] = steps
    return plan
