"""Each member's sampling noise (VAE ``eps``, dropout masks), drawn from its
own generator as the solo run draws it from the global one."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

Tensor = torch.Tensor


class _MemberRNG:
    """One member's sampling noise, drawn as the solo run draws it from the
    global generator after ``torch.manual_seed(epoch_seed(seed, epoch))``."""

    def __init__(self, seed: int, device: torch.device):
        self.gen = torch.Generator(device=device).manual_seed(seed)
        self.device = device

    def normal_(self, t: Tensor) -> Tensor:  # solo: torch.randn_like(mu)
        return t.normal_(generator=self.gen)

    @contextlib.contextmanager
    def drawing(self):
        """Run solo code that draws from torch's global generator (a
        denoising autoencoder's corruption) on this member's stream: its state
        swapped into the global generator, and back, with the draws taken."""
        default = (torch.cuda.default_generators[self.device.index or 0] if self.device.type == "cuda"
                   else torch.default_generator)
        keep = default.get_state()
        default.set_state(self.gen.get_state())
        try:
            yield
        finally:
            self.gen.set_state(default.get_state())
            default.set_state(keep)

    def dropout_noise(self, h: Tensor, p: float) -> Tensor:
        """Solo on the CPU (``at::dropout``): ``noise = empty_like(h).bernoulli_(1 - p);
        noise.div_(1 - p)``, then ``h * noise``.  On CUDA the solo run calls
        the fused ``native_dropout`` on the global generator: run exactly that
        with this member's generator state swapped in (its mask times 1/(1-p))."""
        if self.device.type == "cuda":
            default = torch.cuda.default_generators[self.device.index or 0]
            keep = default.get_state()
            default.set_state(self.gen.get_state())
            noise = torch.native_dropout(torch.ones_like(h), p, True)[0]
            self.gen.set_state(default.get_state())
            default.set_state(keep)
            return noise
        noise = torch.empty_like(h).bernoulli_(1 - p, generator=self.gen)
        return noise.div_(1 - p)


@dataclass
class _Noise:
    """Training mode: the active members' generators and dropout rates
    (``rates[(part, step)]``: one rate per active member)."""

    rngs: list[_MemberRNG]
    rates: dict[tuple[str, int], tuple[float, ...]]

    def slice(self, a: int, b: int) -> _Noise:
        return _Noise(self.rngs[a:b], {key: r[a:b] for key, r in self.rates.items()})
