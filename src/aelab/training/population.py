"""A population of networks evaluated as ONE batched computation.

Every individual is a flat vector of all the model's weights and biases
(the GA paper's direct encoding); a population is a ``(P, n)`` tensor.  The
model's layers are re-run for all P individuals at once:

* dense layers as batched matrix products (``baddbmm``) -- and while the
  input is still the same for every individual, as ONE matrix product with
  all individuals' weights stacked (``(N, in) @ (in, P*out)``);
* convolutions as ONE grouped convolution (groups = P) -- and on a shared
  input as ONE convolution with all individuals' filters stacked;
* transposed convolutions as one grouped ``conv_transpose2d`` (groups = P);
  a nearest-neighbour upsampling by ``s`` followed by a stride-1 transposed
  convolution is run as ONE stride-``s`` transposed convolution whose kernel
  is the original convolved with an ``s x s`` box (exact: upsampling is
  itself a transposed convolution with that box);
* pooling, upsampling, reshapes and activations on the merged (P*N) batch.

No Python loop runs over individuals or genes.  Tensors carry a leading
population axis: ``(P, N, ...)``; a shared input has P == 1.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from ..models.autoencoder import Autoencoder
from ..models.layers import Reshape, module_rules
from . import mutants, subpixel

Tensor = torch.Tensor
# Changed weights per child (mean) up to which mutants are scored as corrections.  Measured
# (2 threads, mutants vs general path): the GA paper's conv AE, P=20: k=10 4.7 vs 6.1 ms,
# k=32 6.5 vs 6.0, k=64 9.9 vs 5.8; the 784-64-784 AE, P=50: k=10 20 vs 25 ms, k=32 19 vs 19,
# k=64 21 vs 19.
SPARSE_CHANGES = 24
CHUNK_ELEMENTS = 2_000_000  # input elements (individuals x samples x pixels) per batched pass


class Population:
    """Maps flat parameter vectors to a model's parameters, and runs the
    model for a whole population of such vectors."""

    def __init__(self, model: nn.Module, use_mutants: bool = True):
        """``use_mutants=False`` turns off :meth:`fitness_mutants`' sparse path
        (it then scores the dense population; for comparisons)."""
        if not isinstance(model, Autoencoder):
            raise ConfigError(f"train.method: evolution trains plain autoencoders (model.kind: ae), "
                              f"not {getattr(model, 'kind', type(model).__name__)}")
        self.model = model.eval()
        self.names, self.shapes, self.offsets = [], [], [0]
        for name, p in model.named_parameters():
            self.names.append(name)
            self.shapes.append(tuple(p.shape))
            self.offsets.append(self.offsets[-1] + p.numel())
        self.size = self.offsets[-1]
        if self.size == 0:
            raise ConfigError("model: has no trainable parameters to evolve")
        self._param_of = {id(p): i for i, (_, p) in enumerate(model.named_parameters())}
        self.plan = _fuse(_leaves(model.body) + _leaves(model.to_latent) + _leaves(model.decoder))
        self.sparse = use_mutants and mutants.supports(self.plan)  # one parent + corrections
        self._parent = None  # (parent vector, its prepared weighted steps)
        if self.sparse:  # lookup tables of the mutants path, on the parameters' device
            params, device = list(model.parameters()), next(model.parameters()).device
            self._step_of_param = mutants.step_of_param(self.plan, params).to(device)
            self._units = mutants.unit_table(self.plan, params).to(device)
            self._widths = mutants.width_table(self.plan, params).to(device)

    # ------------------------------------------------------------ vectors
    def vector(self) -> Tensor:
        """The model's current parameters as one flat vector."""
        return torch.cat([p.detach().reshape(-1) for p in self.model.parameters()])

    def load(self, v: Tensor) -> None:
        """Write the flat vector ``v`` into the model's parameters."""
        with torch.no_grad():
            for p, a, b in zip(self.model.parameters(), self.offsets, self.offsets[1:]):
                p.copy_(v[a:b].view_as(p))

    def _slice(self, P: Tensor, param: nn.Parameter) -> Tensor:
        i = self._param_of[id(param)]
        return P[:, self.offsets[i]:self.offsets[i + 1]].reshape(len(P), *self.shapes[i])

    # ------------------------------------------------------------ forward
    @torch.no_grad()
    def reconstruct(self, P: Tensor, x: Tensor) -> Tensor:
        """Reconstructions of ``x`` (N, C, H, W) by every individual: (P, N, C, H, W)."""
        h, _ = self._forward(P, x)
        return h.expand(len(P), *h.shape[1:]) if h.shape[0] == 1 else h

    def _forward(self, P: Tensor, x: Tensor) -> tuple[Tensor, bool]:
        """(activations, whether they are our own scratch tensor)."""
        return self._run(x, lambda step, h: self._step(step, P, h))

    def _run(self, x: Tensor, weighted) -> tuple[Tensor, bool]:
        """The plan over ``x`` with ``weighted(step, h)`` for the steps that
        carry weights.  Activation functions run in place on scratch tensors
        -- never on ``x`` or a view of it: on the dense AE the out-of-place
        activations and error were ~40% of a generation, memory-bound on
        fresh 7 MB buffers."""
        h, owned = x.unsqueeze(0), False  # (1, N, C, H, W): shared by all individuals
        for step in self.plan:
            inplace = _INPLACE.get(type(step[0])) if owned and len(step) == 1 else None
            if inplace is not None:
                h = inplace(step[0], h)
            elif len(step) == 2 or type(step[0]) in _FRESH:
                h = weighted(step, h)
            else:
                h = self._step(step, None, h)
            owned = owned or len(step) == 2 or type(step[0]) in _FRESH
        return h, owned

    def _forward_mutants(self, m: "mutants.Mutants", x: Tensor) -> tuple[Tensor, bool, Tensor]:
        """Activations of every distinct mutant (rows; see
        :class:`mutants.Changes`) and each child's row: each weighted step
        runs once with the parent's weights, then each changed weight's
        exact term is added (:mod:`aelab.training.mutants`)."""
        changes = mutants.Changes(m, self.offsets, self._step_of_param, self._units, self._widths, len(x))
        base = self._parent_steps(m.parent)
        t = iter(range(len(changes.rows_after)))

        def step_fn(step, h):
            i, layer = next(t), step[-1]
            rows, key = changes.rows_after[i], (i, tuple(h.shape[2:]))
            if key not in base:
                b = self._slice(m.parent[None], layer.bias)[0] if layer.bias is not None else None
                base[key] = mutants.prepare(step, self._slice(m.parent[None], layer.weight)[0], b, tuple(h.shape[-2:]))
            out = base[key](h)
            if rows > len(out):  # children diverging here start from the parent's output
                out = torch.cat([out, out[:1].expand(rows - len(out), *out.shape[1:])])
            for p, is_bias in ((layer.weight, False), (layer.bias, True)):
                change = changes.of(self._param_of[id(p)]) if p is not None else None
                if change is not None:
                    mutants.correct(step, out, h, change, is_bias)
            return out
        h, owned = self._run(x, step_fn)
        return h, owned, changes.slot

    def _parent_steps(self, parent: Tensor) -> dict:
        """The prepared weighted steps of ``parent`` (filled lazily), kept
        while the parent stays the same: in the GA paper's scheme the best
        individual often survives many generations."""
        kept = self._parent
        if kept is None or kept[0].device != parent.device or not torch.equal(kept[0], parent):
            self._parent = kept = (parent.clone(), {})
        return kept[1]

    def _step(self, step: tuple[nn.Module, ...], P: Tensor, h: Tensor) -> Tensor:
        if len(step) == 2:
            return _upsample_conv_transpose(self, *step, P, h)
        layer = _LAYERS.get(type(step[0]))
        if layer is None:  # not from the vocabulary: nothing says how P individuals run it
            raise ConfigError(f"train.method: layer {type(step[0]).__name__} has no batched population rule "
                              f"(aelab.models.layers.LAYERS)")
        return layer(self, step[0], P, h)

    @torch.no_grad()
    def reconstruct_plain(self, P: Tensor, x: Tensor) -> Tensor:
        """The unoptimised reference: load each individual into the model and
        run its own forward (one Python iteration per individual; for tests
        and benchmarks).  Restores the model's parameters afterwards."""
        keep, outs = self.vector(), []
        for v in P:
            self.load(v)
            outs.append(self.model(x)["x_hat"])
        self.load(keep)
        return torch.stack(outs)

    @torch.no_grad()
    def fitness(self, P: Tensor, x: Tensor, measure: str = "mae") -> Tensor:
        """Reconstruction error of each individual (P,): mean absolute error
        (the GA paper's fitness) or mean squared error; lower is better.
        Individuals are scored in chunks whose activations stay cache-sized:
        one huge batched pass is memory-bound (measured 3x slower for a
        784-64-784 AE at P=50 on 256 images than chunks of 10)."""
        step = max(1, CHUNK_ELEMENTS // max(1, x[0].numel() * len(x)))
        return torch.cat([self._fitness(P[i:i + step], x, measure) for i in range(0, len(P), step)])

    @torch.no_grad()
    def fitness_mutants(self, m: "mutants.Mutants", x: Tensor, measure: str = "mae", dense: Tensor | None = None) -> Tensor:
        """:meth:`fitness` of a population of one parent's mutants (the GA
        paper's scheme), with the same chunking; equal to
        ``fitness(m.dense(), x)`` up to float rounding.  Falls back to
        :meth:`fitness` (on ``dense`` if given) when the network has a layer
        without a correction rule or the children change more than
        ``SPARSE_CHANGES`` weights each on average -- or on the ``meta``
        device, where the data-dependent row counts cannot be read."""
        if not self.sparse or len(m.index) > SPARSE_CHANGES * m.size or m.parent.is_meta:
            return self.fitness(m.dense() if dense is None else dense, x, measure)
        step = max(1, CHUNK_ELEMENTS // max(1, x[0].numel() * len(x)))
        parts = [m if step >= m.size else m.chunk(i, min(i + step, m.size)) for i in range(0, m.size, step)]
        scores = []
        for part in parts:
            h, owned, slot = self._forward_mutants(part, x)
            scores.append(self._score((h, owned), len(h), x, measure)[slot])
        return torch.cat(scores)

    def _fitness(self, P: Tensor, x: Tensor, measure: str) -> Tensor:
        return self._score(self._forward(P, x), len(P), x, measure)

    @staticmethod
    def _score(forward: tuple[Tensor, bool], size: int, x: Tensor, measure: str) -> Tensor:
        h, owned = forward
        if not owned or h.shape[0] != size:
            return _error(h.expand(size, *h.shape[1:]), x, measure)
        err = h.sub_(x.unsqueeze(0))  # scratch: the error overwrites the reconstruction
        return (err.abs_() if measure == "mae" else err.square_()).mean(tuple(range(1, err.dim())))


def _error(out: Tensor, x: Tensor, measure: str) -> Tensor:
    err = out - x.unsqueeze(0)
    return (err.abs() if measure == "mae" else err.square()).flatten(1).mean(1)


def _leaves(module: nn.Module) -> list[nn.Module]:
    """The non-Sequential modules of ``module`` in forward order."""
    if isinstance(module, nn.Sequential):
        return [leaf for child in module for leaf in _leaves(child)]
    return [module]


def _fuse(leaves: list[nn.Module]) -> list[tuple[nn.Module, ...]]:
    """Steps of the batched forward: single layers, and (nearest upsampling,
    stride-1 transposed convolution) pairs run as one strided transposed
    convolution."""
    plan, i = [], 0
    while i < len(leaves):
        a, b = leaves[i], leaves[i + 1] if i + 1 < len(leaves) else None
        if isinstance(a, nn.Upsample) and a.mode == "nearest" and isinstance(b, nn.ConvTranspose2d) \
                and b.stride == (1, 1) and b.dilation == (1, 1) and b.output_padding == (0, 0) and b.groups == 1:
            plan.append((a, b))
            i += 2
        else:
            plan.append((a,))
            i += 1
    return plan


def _upsample_conv_transpose(pop: "Population", up: nn.Upsample, m: nn.ConvTranspose2d, P: Tensor, h: Tensor) -> Tensor:
    """Nearest upsampling by integer factors, then a stride-1 transposed
    convolution, as ONE grouped sub-pixel convolution over the population
    (:mod:`aelab.training.subpixel`).  The result is a (P, N, ...) view of an
    (N, P, ...) tensor: the next grouped layer needs exactly that layout.
    Falls back to the two layers when the factors are not integers."""
    scale = subpixel.integer_scale(up, h.shape[-2:])
    if scale is None or m.groups != 1:
        return _conv_transpose2d(pop, m, P, _per_sample(up, h))
    b = pop._slice(P, m.bias) if m.bias is not None else None
    run = subpixel.upsample_conv_transpose(pop._slice(P, m.weight), b, scale, tuple(h.shape[-2:]), m.padding)
    return run(_as_groups(h, len(P))).transpose(0, 1)


def _as_groups(h: Tensor, P: int) -> Tensor:
    """Activations (P' in {1, P}, N, C, H, W) as one (N, P*C, H, W) batch:
    individual p's channels are group p of a grouped convolution."""
    return h.expand(P, *h.shape[1:]).transpose(0, 1).reshape(h.shape[1], -1, *h.shape[3:])


def _per_sample(module: nn.Module, h: Tensor) -> Tensor:
    """A parameter-free layer applied to the merged (P*N) batch."""
    out = module(h.reshape(-1, *h.shape[2:]))
    return out.reshape(h.shape[0], h.shape[1], *out.shape[1:])


def _linear(pop: Population, m: nn.Linear, P: Tensor, h: Tensor) -> Tensor:
    w = pop._slice(P, m.weight)  # (P, out, in)
    if h.shape[0] == 1 and len(P) > 1:  # shared input: one (N, in) @ (in, P*out) product
        b = pop._slice(P, m.bias).reshape(-1) if m.bias is not None else None
        out = F.linear(h[0], w.reshape(-1, w.shape[2]), b)  # (N, P*out)
        return out.view(len(out), len(P), -1).transpose(0, 1)  # (P, N, out)
    b = pop._slice(P, m.bias).unsqueeze(1) if m.bias is not None else P.new_zeros(len(P), 1, w.shape[1])
    return torch.baddbmm(b, h.expand(len(P), *h.shape[1:]), w.transpose(1, 2))  # (P, N, out)


def _conv2d(pop: Population, m: nn.Conv2d, P: Tensor, h: Tensor) -> Tensor:
    """Per-individual conv2d as ONE convolution: on a shared input, all
    individuals' filters stacked as output channels; otherwise the population
    folded into the channel axis as groups (measured 5-6x faster than
    im2col + batched matmul for the GA paper's encoder)."""
    w = pop._slice(P, m.weight)  # (P, out, C/groups, k, k)
    b = pop._slice(P, m.bias).reshape(-1) if m.bias is not None else None
    n, groups = h.shape[1], m.groups
    if h.shape[0] == 1 and groups == 1:
        x = h[0]  # (N, C, H, W)
    else:
        x, groups = _as_groups(h, len(P)), groups * len(P)
    out = F.conv2d(x, w.reshape(-1, *w.shape[2:]), b, m.stride, m.padding, m.dilation, groups)
    return out.view(n, len(P), -1, *out.shape[2:]).transpose(0, 1)  # (P, N, out, OH, OW)


def _conv_transpose2d(pop: Population, m: nn.ConvTranspose2d, P: Tensor, h: Tensor) -> Tensor:
    """Per-individual transposed conv as ONE grouped conv_transpose2d: the
    population is folded into the channel axis (groups = P).  Measured 2-4x
    faster than matmul + col2im for the GA paper's decoder."""
    return _grouped_conv_transpose(pop._slice(P, m.weight), pop._slice(P, m.bias) if m.bias is not None else None,
                                   h, m.stride, m.padding, m.output_padding, m.dilation, m.groups)


def _grouped_conv_transpose(w: Tensor, b: Tensor | None, h: Tensor, stride, padding, output_padding=0,
                            dilation=1, groups=1) -> Tensor:
    """Per-individual weights ``w`` (P, Cin, Cout/groups, k, k) on ``h`` (P' in {1, P}, N, Cin, H, W)."""
    P, n, c = len(w), h.shape[1], h.shape[2]
    out = F.conv_transpose2d(_as_groups(h, P), w.reshape(P * c, *w.shape[2:]), b.reshape(-1) if b is not None else None,
                             stride, padding, output_padding, groups=P * groups, dilation=dilation)
    return out.view(n, P, -1, *out.shape[2:]).transpose(0, 1)  # (P, N, Cout, OH, OW)


def _batchnorm(pop: Population, m: nn.modules.batchnorm._BatchNorm, P: Tensor, h: Tensor) -> Tensor:
    """Eval-mode batch norm: running statistics shared, scale and shift evolved."""
    extra = (1,) * (h.dim() - 3)
    mean = m.running_mean.view(1, 1, -1, *extra)
    std = torch.sqrt(m.running_var.view(1, 1, -1, *extra) + m.eps)
    out = (h - mean) / std
    if m.affine:
        out = out * pop._slice(P, m.weight).view(len(P), 1, -1, *extra) + \
            pop._slice(P, m.bias).view(len(P), 1, -1, *extra)
    return out


def _reshape(pop: Population, m: nn.Module, P: Tensor, h: Tensor) -> Tensor:
    shape = m.shape if isinstance(m, Reshape) else m.unflattened_size
    return h.reshape(h.shape[0], h.shape[1], *shape)


def _flatten(pop: Population, m: nn.Flatten, P: Tensor, h: Tensor) -> Tensor:
    return h.flatten(2)


def _elementwise(pop: Population, m: nn.Module, P: Tensor, h: Tensor) -> Tensor:
    return h if isinstance(m, (nn.Identity, nn.Dropout)) else m(h)


RULES = {  # Layer.population -> how P individuals run the layer at once
    "linear": _linear, "conv2d": _conv2d, "conv_transpose2d": _conv_transpose2d, "batchnorm": _batchnorm,
    "reshape": _reshape, "flatten": _flatten, "elementwise": _elementwise,
    "per_sample": lambda pop, m, P, h: _per_sample(m, h),
}
_LAYERS = {cls: RULES[layer.population] for cls, layer in module_rules().items()}
# layers whose batched output is always a new tensor (scratch we may overwrite)
_FRESH = {cls for cls, layer in module_rules().items() if layer.population in ("linear", "conv2d",
                                                                               "conv_transpose2d", "batchnorm")}
_INPLACE = {  # in-place twins of activation layers, for scratch tensors only
    nn.ReLU: lambda m, h: h.relu_(), nn.Sigmoid: lambda m, h: h.sigmoid_(), nn.Tanh: lambda m, h: h.tanh_(),
    nn.LeakyReLU: lambda m, h: F.leaky_relu_(h, m.negative_slope), nn.ELU: lambda m, h: F.elu_(h, m.alpha),
    nn.Identity: lambda m, h: h, nn.Dropout: lambda m, h: h,
}


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def check_finite(values: Tensor) -> Tensor:
    """Non-finite fitness becomes +inf, so such an individual is never selected."""
    return torch.where(torch.isfinite(values), values, torch.full_like(values, math.inf))
