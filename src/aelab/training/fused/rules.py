"""The eight batched update rules, one per torch optimizer, written op for op
like torch's single-tensor (for-loop) implementation, and the per-member
scalar ops they are written in."""
from __future__ import annotations

import numpy as np
import torch

from .scalars import _coef

Tensor = torch.Tensor


class _Rules:
    """The update rules of :class:`~.optimizer._Group` (mixed into it): each
    ``_<rule>(params, grads, lrs)`` steps the rows ``self._r`` of the group,
    reading ``self.hypers``, ``self.steps``, ``self.state`` and (nadam)
    ``self.mu_product``, which the group holds."""

    def _st(self, name: str, i: int) -> Tensor:
        """State ``name`` of parameter ``i`` for the rows being stepped."""
        return self.state[name][i][self._r]

    def _steps(self) -> list[int]:
        return self.steps[self._r]

    def _c(self, values, like):
        """``_coef(values)`` shaped for ``like``, memoised: constants (betas,
        eps, ...) are made once, the step's own values once per step."""
        key = (tuple(values), like.dim())
        t = self._memo.get(key)
        if t is None:
            if len(self._memo) > 512:
                self._memo.clear()
            base = self._memo.get((key[0], 1))
            if base is None:
                base = self._memo[(key[0], 1)] = _coef(values, like.device)
            t = self._memo[key] = base.view(-1, *([1] * (like.dim() - 1)))
        return t

    def _hyper(self, key):
        return [h[key] for h in self.hypers[self._r]]

    def _v(self, values, like):
        """The members' value as torch passes it -- one Python float when they
        share it (then every call below is torch's own) -- else per member."""
        v0 = values[0]
        return float(v0) if all(v == v0 for v in values) else self._c(values, like)

    def _addcmul(self, t, a, b, values):
        """``t.addcmul_(a, b, value=v)``; per member as ``t.addcmul_(a * v, b)`` (one fma of ``fl(v*a)``)."""
        v = self._v(values, t)
        return t.addcmul_(a, b, value=v) if isinstance(v, float) else t.addcmul_(a * v, b)

    def _addcdiv(self, t, a, b, values):
        """``t.addcdiv_(a, b, value=v)``; per member as ``t.addcdiv_(a * v, b)`` (``t + fl(v*a)/b``)."""
        v = self._v(values, t)
        return t.addcdiv_(a, b, value=v) if isinstance(v, float) else t.addcdiv_(a * v, b)

    def _add(self, t, other, values, inplace=False):
        """``t.add(other, alpha=v)``; per member as ``addcmul(t, other, v)`` (both one fma)."""
        v = self._v(values, t)
        if isinstance(v, float):
            return t.add_(other, alpha=v) if inplace else t.add(other, alpha=v)
        return t.addcmul_(other, v) if inplace else torch.addcmul(t, other, v)

    def _decay(self, p, g):
        """``grad.add(param, alpha=weight_decay)``."""
        return self._add(g, p, self._hyper("weight_decay"))

    def _moments(self, i, p, g, lrs, wd, b1, b2):
        """Adam's and NAdam's shared start: maximize, weight decay (L2 or
        decoupled), then both moment estimates updated in place."""
        h0 = self.hypers[0]
        g = -g if h0["maximize"] else g
        if h0["weight_decay"] != 0:
            if h0["decoupled_weight_decay"]:
                p.mul_(self._v([1 - lr * w for lr, w in zip(lrs, wd)], p))
            else:
                g = self._decay(p, g)
        exp_avg, exp_avg_sq = self._st("exp_avg", i), self._st("exp_avg_sq", i)
        exp_avg.lerp_(g, self._v([1 - b for b in b1], p))
        exp_avg_sq.mul_(self._v(b2, p))
        self._addcmul(exp_avg_sq, g, g, [1 - b for b in b2])
        return g, exp_avg, exp_avg_sq

    def _adam(self, params, grads, lrs):
        """``torch.optim.Adam``'s (and AdamW's) single-tensor step, per member."""
        h0 = self.hypers[0]
        b1, b2 = self._hyper("betas_1"), self._hyper("betas_2")
        eps, wd = self._hyper("eps"), self._hyper("weight_decay")
        bc1 = [1 - b ** s for b, s in zip(b1, self._steps())]
        bc2 = [1 - b ** s for b, s in zip(b2, self._steps())]
        step_size = [lr / c for lr, c in zip(lrs, bc1)]
        bc2_sqrt = [c ** 0.5 for c in bc2]
        for i, (p, g) in enumerate(zip(params, grads)):
            g, exp_avg, exp_avg_sq = self._moments(i, p, g, lrs, wd, b1, b2)
            if h0["amsgrad"]:
                m = self._st("max_exp_avg_sq", i)
                torch.maximum(m, exp_avg_sq, out=m)
                denom = (m.sqrt() / self._v(bc2_sqrt, p)).add_(self._v(eps, p))
            else:
                denom = (exp_avg_sq.sqrt() / self._v(bc2_sqrt, p)).add_(self._v(eps, p))
            self._addcdiv(p, exp_avg, denom, [-s for s in step_size])

    def _sgd(self, params, grads, lrs):
        """``torch.optim.SGD``'s single-tensor step, per member."""
        h0 = self.hypers[0]
        mom, damp = self._hyper("momentum"), self._hyper("dampening")
        for i, (p, g) in enumerate(zip(params, grads)):
            g = -g if h0["maximize"] else g
            if h0["weight_decay"] != 0:
                g = self._decay(p, g)
            if h0["momentum"] != 0:
                buf = self._st("momentum_buffer", i)
                if self._steps()[0] == 1:  # torch: buf = grad.detach().clone()
                    buf.copy_(g)
                else:
                    buf.mul_(self._v(mom, p))
                    self._add(buf, g, [1 - d for d in damp], inplace=True)
                g = self._add(g, buf, mom) if h0["nesterov"] else buf
            self._add(p, g, [-lr for lr in lrs], inplace=True)

    def _rmsprop(self, params, grads, lrs):
        """``torch.optim.RMSprop``'s single-tensor step, per member."""
        h0 = self.hypers[0]
        alpha, eps, mom = self._hyper("alpha"), self._hyper("eps"), self._hyper("momentum")
        for i, (p, g) in enumerate(zip(params, grads)):
            g = -g if h0["maximize"] else g
            if h0["weight_decay"] != 0:
                g = self._decay(p, g)
            sq = self._st("square_avg", i)
            sq.mul_(self._v(alpha, p))
            self._addcmul(sq, g, g, [1 - a for a in alpha])
            if h0["centered"]:
                ga = self._st("grad_avg", i)
                ga.lerp_(g, self._v([1 - a for a in alpha], p))
                avg = sq.addcmul(ga, ga, value=-1).sqrt_()
            else:
                avg = sq.sqrt()
            avg = avg.add_(self._v(eps, p))
            if h0["momentum"] > 0:
                buf = self._st("momentum_buffer", i)
                buf.mul_(self._v(mom, p)).addcdiv_(g, avg)
                self._add(p, buf, [-lr for lr in lrs], inplace=True)
            else:
                self._addcdiv(p, g, avg, [-lr for lr in lrs])

    def _adagrad(self, params, grads, lrs):
        """``torch.optim.Adagrad``'s single-tensor step, per member."""
        h0 = self.hypers[0]
        clr = [lr / (1 + (s - 1) * d) for lr, s, d in zip(lrs, self._steps(), self._hyper("lr_decay"))]
        for i, (p, g) in enumerate(zip(params, grads)):
            g = -g if h0["maximize"] else g
            if h0["weight_decay"] != 0:
                g = self._decay(p, g)
            s = self._st("sum", i)
            s.addcmul_(g, g, value=1)
            std = s.sqrt().add_(self._v(self._hyper("eps"), p))
            self._addcdiv(p, g, std, [-c for c in clr])

    def _adadelta(self, params, grads, lrs):
        """``torch.optim.Adadelta``'s single-tensor step, per member."""
        h0 = self.hypers[0]
        rho, eps = self._hyper("rho"), self._hyper("eps")
        for i, (p, g) in enumerate(zip(params, grads)):
            g = -g if h0["maximize"] else g
            if h0["weight_decay"] != 0:
                g = self._decay(p, g)
            sq, acc = self._st("square_avg", i), self._st("acc_delta", i)
            sq.mul_(self._v(rho, p))
            self._addcmul(sq, g, g, [1 - r for r in rho])
            std = sq.add(self._v(eps, p)).sqrt_()
            delta = acc.add(self._v(eps, p)).sqrt_()
            delta.div_(std).mul_(g)
            acc.mul_(self._v(rho, p))
            self._addcmul(acc, delta, delta, [1 - r for r in rho])
            self._add(p, delta, [-lr for lr in lrs], inplace=True)

    def _adamax(self, params, grads, lrs):
        """``torch.optim.Adamax``'s single-tensor step, per member."""
        h0 = self.hypers[0]
        b1, b2, eps = self._hyper("betas_1"), self._hyper("betas_2"), self._hyper("eps")
        clr = [lr / (1 - b ** s) for lr, b, s in zip(lrs, b1, self._steps())]
        for i, (p, g) in enumerate(zip(params, grads)):
            g = -g if h0["maximize"] else g
            if h0["weight_decay"] != 0:
                g = self._decay(p, g)
            exp_avg, exp_inf = self._st("exp_avg", i), self._st("exp_inf", i)
            exp_avg.lerp_(g, self._v([1 - b for b in b1], p))
            torch.maximum(exp_inf.mul_(self._v(b2, p)), g.abs().add_(self._v(eps, p)), out=exp_inf)
            self._addcdiv(p, exp_avg, exp_inf, [-c for c in clr])

    def _nadam(self, params, grads, lrs):
        """``torch.optim.NAdam``'s single-tensor step, per member."""
        b1, b2, eps = self._hyper("betas_1"), self._hyper("betas_2"), self._hyper("eps")
        wd, md = self._hyper("weight_decay"), self._hyper("momentum_decay")
        bc2 = [1 - b ** s for b, s in zip(b2, self._steps())]
        mu = [b * (1.0 - 0.5 * (0.96 ** (s * d))) for b, s, d in zip(b1, self._steps(), md)]
        mu_next = [b * (1.0 - 0.5 * (0.96 ** ((s + 1) * d))) for b, s, d in zip(b1, self._steps(), md)]
        self.mu_product[self._r] = [np.float32(mp * np.float32(m))  # torch: float32 tensor *= mu
                                    for mp, m in zip(self.mu_product[self._r], mu)]
        mp = [float(v) for v in self.mu_product[self._r]]
        c_grad = [-lr * (1.0 - m) / (1.0 - q) for lr, m, q in zip(lrs, mu, mp)]
        c_avg = [(-lr * mn) / (1.0 - q * mn) for lr, mn, q in zip(lrs, mu_next, mp)]
        for i, (p, g) in enumerate(zip(params, grads)):
            g, exp_avg, exp_avg_sq = self._moments(i, p, g, lrs, wd, b1, b2)
            denom = exp_avg_sq.div(self._v(bc2, p)).sqrt()
            denom.add_(self._v(eps, p))
            self._addcdiv(p, g, denom, c_grad)
            self._addcdiv(p, exp_avg, denom, c_avg)
