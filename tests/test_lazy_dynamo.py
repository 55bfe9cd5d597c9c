"""aelab builds, steps, saves and restores torch optimizers without importing
torch._dynamo (aelab.training.lazy_dynamo), and torch.compile still works in
the same process afterwards.  Each case runs in a fresh interpreter: whether
a module is imported is process state."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {SRC!r})\n" + textwrap.dedent(code)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_a_whole_training_run_never_imports_dynamo(tmp_path):
    """Build, train, checkpoint (the optimizer's state_dict), evaluate, figures."""
    code = f"""
    from aelab import api
    run = api.train("digits-ae", out={str(tmp_path / 'run')!r},
                    overrides=["train.epochs=2", "data.samples=300", "train.optimizer=rmsprop"])
    print("torch._dynamo" in sys.modules, len(run.history))
    """
    assert _run(code) == "False 2"


def test_every_optimizer_method_runs_without_dynamo():
    code = """
    import torch
    from aelab.spec import TrainSpec
    from aelab.training.lazy_dynamo import step
    from aelab.training.optim import make_optimizer, _OPTIMIZERS
    p = torch.nn.Parameter(torch.ones(3))
    for name in _OPTIMIZERS:
        opt = make_optimizer([p], TrainSpec(optimizer=name))
        (p * p).sum().backward()
        step(opt)
        opt.zero_grad()
        opt.load_state_dict(opt.state_dict())
    print("torch._dynamo" in sys.modules)
    """
    assert _run(code) == "False"


def test_step_is_torchs_step_bit_for_bit():
    """Every optimizer, three steps under a schedule: the same parameters and
    state as ``optimizer.step()``, the scheduler sees the step (no warning),
    and a registered step hook makes it ``optimizer.step()`` itself."""
    code = """
    import warnings
    import torch
    from aelab.spec import TrainSpec
    from aelab.training.lazy_dynamo import step
    from aelab.training.optim import make_optimizer, _OPTIMIZERS
    warnings.simplefilter("error")
    def run(name, fn):
        torch.manual_seed(0)
        p = torch.nn.Parameter(torch.randn(5, 4))
        opt = make_optimizer([p], TrainSpec(optimizer=name, lr=0.05, momentum=0.9 if name == "sgd" else 0.0))
        sched = torch.optim.lr_scheduler.StepLR(opt, 1, 0.5)
        for i in range(3):
            opt.zero_grad()
            ((p - i) ** 3).sum().backward()
            fn(opt)
            sched.step()
        return p.detach(), opt.state_dict()["state"]
    same = True
    for name in _OPTIMIZERS:
        (a, sa), (b, sb) = run(name, step), run(name, lambda o: o.step())
        same &= torch.equal(a, b) and all(torch.equal(sa[0][k], sb[0][k]) for k in sa[0])
    calls = []
    p = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([p], lr=0.1)
    opt.register_step_post_hook(lambda *a: calls.append(1))
    p.sum().backward()
    step(opt)
    print(same, calls == [1])
    """
    assert _run(code) == "True True"


def test_compile_after_install_uses_dynamos_own_disable():
    """The first optimizer call after torch._dynamo is imported hands over to
    torch._dynamo.disable; a compiled step with the optimizer inside it runs
    and updates the parameter as the eager step does."""
    code = """
    import torch
    import aelab.training.optim  # installs the lazy version
    def make():
        p = torch.nn.Parameter(torch.ones(3))
        return p, torch.optim.Adam([p], lr=0.1)
    def step(p, opt):
        opt.zero_grad()
        (p * torch.arange(3.0)).sum().backward()
        opt.step()
    p1, o1 = make(); step(p1, o1); step(p1, o1)
    p2, o2 = make()
    compiled = torch.compile(step, backend="eager")
    compiled(p2, o2); compiled(p2, o2)
    handed = torch.optim.Optimizer.zero_grad.__wrapped__.__dynamo_disable
    print(torch.allclose(p1, p2), handed.__name__ != "call")
    """
    assert _run(code) == "True True"


def test_an_unknown_torch_wrapper_is_left_alone():
    code = """
    from aelab.training import lazy_dynamo
    lazy_dynamo._disable_wrapper_code = lambda: None
    print(lazy_dynamo.install())
    """
    assert _run(code) == "False"
