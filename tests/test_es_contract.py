"""One contract run against every evolution strategy (and the GA where it
applies): it improves fitness on a tiny problem, resumes bit-exactly from a
checkpoint written to disk, never lets a non-finite individual into its
state, rejects settings it cannot use, and creates every tensor on the
population's device.  Plus oracles for one update step of PGPE and
sep-CMA-ES written independently from the papers' per-sample formulas."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aelab.errors import ConfigError
from aelab.models import build_model
from aelab.spec import ModelSpec, TrainSpec, load_config
from aelab.training import operators as op
from aelab.training.callbacks import Callback
from aelab.training.checkpoint import read_tensors_and_state, save_tensors_and_state
from aelab.training.evolution import EvolutionTrainer
from aelab.training.strategies import strategy as strategy_class
from aelab.training.strategies.pgpe import MOMENTUM, PGPE, STDEV_LR, STDEV_MAX_CHANGE
from aelab.training.population import Population
from aelab.training.strategies.sepcma import SepCMA, SepCMAConstants

ES = {  # settings under which each strategy learns the tiny problem
    "openai": {"lr": 0.05, "sigma": 0.1},
    "snes": {"lr": 1.0, "sigma": 0.1},
    "pgpe": {"lr": 0.2, "sigma": 0.1},
    "sepcma": {"lr": 1.0, "sigma": 0.1},
}


def spec_for(kind: str, **extra) -> TrainSpec:
    method = {"method": "ga"} if kind == "ga" else {"method": "es", "es": kind, **ES[kind]}
    return TrainSpec(**{"population": 16, "seed": 3, "log_every": 1, **method, **extra})


def tiny_problem(seed: int = 0):
    torch.manual_seed(seed)
    model = build_model(ModelSpec(encoder=[6], latent_dim=2), (1, 4, 4))
    return model, torch.rand(12, 1, 4, 4)


@pytest.mark.parametrize("kind", sorted(ES))
def test_every_es_improves_fitness_of_its_centre(kind):
    model, x = tiny_problem()
    trainer = EvolutionTrainer(model, spec_for(kind, generations=40, log_every=40))
    start = float(trainer.pop.fitness(trainer.pop.vector()[None], x)[0])
    trainer.fit(x, None, x[:0], None)
    end = float(trainer.pop.fitness(trainer.best[None], x)[0])
    assert end < 0.9 * start, (start, end)


class SaveAt(Callback):
    """Writes the trainer's checkpoint to disk after generation ``g``."""

    def __init__(self, path, g):
        self.path, self.g = path, g

    def on_epoch_end(self, trainer) -> None:
        if trainer.state.epoch == self.g:
            save_tensors_and_state(self.path, *trainer.checkpoint())


@pytest.mark.parametrize("kind", ["ga", *sorted(ES)])
def test_every_strategy_resumes_bit_exactly(kind, tmp_path):
    model, x = tiny_problem()
    straight = EvolutionTrainer(model, spec_for(kind, generations=12),
                                [SaveAt(tmp_path / "ck.safetensors", 5)])
    straight.fit(x, None, x[:4], None)
    resumed = EvolutionTrainer(tiny_problem(1)[0], spec_for(kind, generations=12))  # other weights: all restored
    resumed.restore(*read_tensors_and_state(tmp_path / "ck.safetensors"))
    assert resumed.state.epoch == 5
    resumed.fit(x, None, x[:4], None)
    drop = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert drop(resumed.state.history) == drop(straight.state.history) and len(straight.state.history) == 12
    assert torch.equal(resumed.best, straight.best)
    for name, value in straight.strategy.tensors().items():
        assert torch.equal(resumed.strategy.tensors()[name], value), name


@pytest.mark.parametrize("kind", ["ga", *sorted(ES)])
def test_non_finite_individuals_never_enter_the_state(kind, monkeypatch):
    model, x = tiny_problem()
    trainer = EvolutionTrainer(model, spec_for(kind, generations=5))
    def breaking(real):
        def broken(self, P, x, kind="mae", **kw):  # the last three individuals of every generation blow up
            fit = real(self, P, x, kind, **kw)
            if len(fit) == 16:  # not the trainer's own scoring of the best
                fit[-3:] = torch.tensor([math.nan, math.inf, -math.inf])
            return fit
        return broken
    # the GA scores its mutants through fitness_mutants, which may fall back on fitness: break it once
    monkeypatch.setattr(Population, "fitness_mutants", breaking(Population.fitness_mutants))
    monkeypatch.setattr(Population, "fitness", breaking(Population.fitness))
    trainer.fit(x, None, x[:0], None)
    assert trainer.discarded == 15
    for name, value in trainer.strategy.tensors().items():
        assert torch.isfinite(value.float()).all(), name
    assert torch.isfinite(trainer.best).all()


@pytest.mark.parametrize("kind, overrides, message", [
    ("openai", ["train.population=7"], "train.population: OpenAI-ES samples antithetic pairs"),
    ("pgpe", ["train.population=7"], "train.population: PGPE samples symmetric pairs and needs an even"),
    ("sepcma", ["train.population=3"], "train.population: sep-CMA-ES recombines the best half"),
    ("snes", ["train.es=snes2"], "train.es"),
])
def test_every_es_rejects_settings_it_cannot_use(tiny, kind, overrides, message):
    model, _ = tiny_problem()
    with pytest.raises(ConfigError, match=message):
        cfg = load_config(tiny, ["train.method=es", f"train.es={kind}", *overrides])
        EvolutionTrainer(model, cfg.train)
    with pytest.raises(ConfigError, match="train.population"):
        load_config(tiny, ["train.method=es", f"train.es={kind}", "train.population=1"])


@pytest.mark.parametrize("kind", ["ga", "ga-operators", *sorted(ES)])
def test_every_tensor_is_made_on_the_population_device(kind):
    """A model on the ``meta`` device: any tensor created on the CPU and mixed
    with the population raises ("not on the expected device"), so this
    catches a missing ``device=`` without a GPU."""
    model, _ = tiny_problem()
    model = model.to("meta")
    pop = Population(model)
    gen = torch.Generator().manual_seed(0)
    spec = spec_for(kind) if kind != "ga-operators" else \
        spec_for("ga", selection="tournament", crossover="one_point", mutation="gaussian", elitism=2)
    strategy = strategy_class(kind.split("-")[0])(spec, pop, pop.vector(), gen)
    x = torch.empty(5, 1, 4, 4, device="meta")
    for _ in range(2):
        best, fit = strategy.step(pop, x, gen)
    assert best.device.type == "meta" and fit.device.type == "meta"
    assert all(v.device.type == "meta" for v in strategy.tensors().values())


# ------------------------------------------------------------------ oracles
def test_pgpe_update_matches_the_papers_per_sample_sums():
    """Sehnke et al. 2010 symmetric sampling, summed sample by sample in
    float64, then ClipUp (Toklu et al. 2020) and the clipped stdev step."""
    n, half, lr = 5, 3, 0.3
    rng = np.random.default_rng(0)
    mu, sigma = rng.normal(size=n), rng.uniform(0.05, 0.3, n)
    velocity = rng.normal(size=n) * 0.1
    eps = rng.normal(size=(half, n)) * sigma
    u = np.array([0.5, -0.1, 0.3, -0.5, 0.1, -0.3])  # utilities of [mu + eps, mu - eps]
    g_mu, g_sigma, b = np.zeros(n), np.zeros(n), u.mean()
    for k in range(half):
        g_mu += eps[k] * (u[k] - u[half + k]) / 2 / half
        g_sigma += ((u[k] + u[half + k]) / 2 - b) * (eps[k] ** 2 - sigma ** 2) / sigma / half
    v = MOMENTUM * velocity + lr * g_mu / np.linalg.norm(g_mu)
    if np.linalg.norm(v) > 2 * lr:
        v = v / np.linalg.norm(v) * 2 * lr
    s = np.clip(sigma + STDEV_LR * g_sigma, sigma * (1 - STDEV_MAX_CHANGE), sigma * (1 + STDEV_MAX_CHANGE))

    es = PGPE.__new__(PGPE)
    es.spec = TrainSpec(method="es", es="pgpe", lr=lr, population=2 * half)
    t = lambda a: torch.tensor(a, dtype=torch.float64)
    es.mu, es.sigma, es.velocity = t(mu), t(sigma), t(velocity)
    es.update(t(eps), t(u))
    assert np.allclose(es.velocity.numpy(), v, atol=1e-12)
    assert np.allclose(es.mu.numpy(), mu + v, atol=1e-12)
    assert np.allclose(es.sigma.numpy(), s, atol=1e-12)


def test_pgpe_scores_symmetric_pairs_with_centered_ranks():
    model, x = tiny_problem()
    pop = Population(model)
    es = PGPE(spec_for("pgpe", population=8), pop, pop.vector(), torch.Generator().manual_seed(0))
    seen = []
    real = pop.fitness
    pop.fitness = lambda P, x, kind="mae": seen.append(P.clone()) or real(P, x, kind)
    es.step(pop, x, torch.Generator().manual_seed(1))
    P, mu0 = seen[0], pop.vector()
    assert torch.allclose(P[:4] - mu0, mu0 - P[4:], atol=1e-6)
    assert torch.allclose(op.centered_ranks(torch.tensor([3.0, 1.0])), torch.tensor([-0.5, 0.5]))


def _sep_cma_reference(n, lam, sigma0, steps):
    """CMA-ES with a FULL covariance matrix in float64 (Hansen's tutorial),
    whose covariance update is then restricted to its diagonal with the
    learning rates scaled by (n + 2) / 3 -- Ros & Hansen's definition of
    sep-CMA-ES.  ``steps`` is a list of (z, fitness) pairs."""
    k = SepCMAConstants(n, lam)
    w = k.weights.numpy()
    m, sigma, C = np.zeros(n), sigma0, np.eye(n)
    ps, pc = np.zeros(n), np.zeros(n)
    for g, (z, f) in enumerate(steps, start=1):
        vals, vecs = np.linalg.eigh(C)
        sqrtC = vecs @ np.diag(np.sqrt(vals)) @ vecs.T
        inv_sqrtC = vecs @ np.diag(1 / np.sqrt(vals)) @ vecs.T
        y = z @ sqrtC.T
        sel = np.argsort(f)[: k.mu]
        y_w = sum(w[i] * y[j] for i, j in enumerate(sel))
        m = m + sigma * y_w
        ps = (1 - k.c_sigma) * ps + math.sqrt(k.c_sigma * (2 - k.c_sigma) * k.mueff) * inv_sqrtC @ y_w
        sigma = sigma * math.exp(k.c_sigma / k.d_sigma * (np.linalg.norm(ps) / k.chi_n - 1))
        h = float(np.linalg.norm(ps) / math.sqrt(1 - (1 - k.c_sigma) ** (2 * g)) < (1.4 + 2 / (n + 1)) * k.chi_n)
        pc = (1 - k.c_c) * pc + h * math.sqrt(k.c_c * (2 - k.c_c) * k.mueff) * y_w
        rank_mu = sum(w[i] * np.outer(y[j], y[j]) for i, j in enumerate(sel))
        full = ((1 - k.c_1 - k.c_mu + (1 - h) * k.c_1 * k.c_c * (2 - k.c_c)) * C
                + k.c_1 * np.outer(pc, pc) + k.c_mu * rank_mu)
        C = np.diag(np.diag(full))
    return m, sigma, np.diag(C), ps, pc


def test_sep_cma_updates_match_a_full_matrix_cma_restricted_to_the_diagonal():
    n, lam, sigma0 = 6, 8, 0.5
    rng = np.random.default_rng(1)
    steps = [(rng.normal(size=(lam, n)), rng.normal(size=lam)) for _ in range(3)]
    m, sigma, C, ps, pc = _sep_cma_reference(n, lam, sigma0, steps)

    model = build_model(ModelSpec(encoder=[], latent_dim=1), (1, 1, 2))  # n = 2*1+1 + 1*2+2 = 7
    pop = Population(model)
    es = SepCMA(TrainSpec(method="es", es="sepcma", population=lam, sigma=sigma0), pop,
                torch.zeros(pop.size, dtype=torch.float64), torch.Generator())
    es.m, es.C = torch.zeros(n, dtype=torch.float64), torch.ones(n, dtype=torch.float64)  # the oracle's n
    es.p_sigma, es.p_c = torch.zeros(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)
    es.k = SepCMAConstants(n, lam)
    es.w = es.k.weights
    for z, f in steps:
        z = torch.tensor(z)
        es.update(z, z * es.C.sqrt(), torch.tensor(f))
    assert np.allclose(es.m.numpy(), m, atol=1e-12)
    assert math.isclose(float(es.sigma), sigma, rel_tol=1e-12)
    assert np.allclose(es.C.numpy(), C, atol=1e-12)
    assert np.allclose(es.p_sigma.numpy(), ps, atol=1e-12) and np.allclose(es.p_c.numpy(), pc, atol=1e-12)


def test_sep_cma_constants_follow_ros_and_hansen():
    k = SepCMAConstants(100, 10)
    assert k.mu == 5 and math.isclose(float(k.weights.sum()), 1.0)
    c_1_full = 2 / ((100 + 1.3) ** 2 + k.mueff)
    assert math.isclose(k.c_1, c_1_full * 102 / 3)  # separable: x (n + 2) / 3
    assert 0 < k.c_mu < 1 - k.c_1 and 0 < k.c_sigma < 1 and k.d_sigma > 1
