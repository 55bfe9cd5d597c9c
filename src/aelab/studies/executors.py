"""Executors: who runs a study's trials, and where.

An executor has one method, ``run(ctx)``: return when the study in
``ctx``'s storage needs nothing more.  Sampling, de-duplication, recovery
of dead workers and the budget all live in the storage and in
``runner.work``, so executors only decide where the worker loop runs:

- ``LocalExecutor(workers)``: ``workers`` loops on this machine (in this
  process for one, forked processes otherwise).
- ``RayExecutor(...)``: every Ray task runs one trial of that same loop
  against the shared storage; the driver keeps up to ``tasks`` of them in
  flight, each with ``cpus`` CPUs and ``gpus`` (fractional) GPUs, until the
  study is finished.  A task whose Ray worker died is retried by Ray; its
  trial is recovered by the storage (dead local pid, or heartbeat).
"""
from __future__ import annotations

import abc
import logging
import math
import multiprocessing as mp
import socket
import importlib
import sys
from dataclasses import replace

from ..data import load_dataset
from ..errors import AelabError, ConfigError
from ..spec import load_config
from ..threads import cpus
from .runner import StudyContext, create_or_load, finished, work

EXECUTORS = ("local", "ray")
PROBE_SECONDS = 5  # how long to wait for a Ray head's port before saying it is unreachable
RAY_PORT = 6379


class Executor(abc.ABC):
    """Runs a study's worker loop until the study is finished."""

    def check(self) -> None:
        """Fail early, before the study is created, on what cannot work (an
        unreachable cluster); nothing to check by default."""

    @abc.abstractmethod
    def run(self, ctx: StudyContext) -> None:
        """Work on ``ctx``'s study (already created in its storage) until it is finished."""


# ----------------------------------------------------------------- local


class LocalExecutor(Executor):
    """``workers`` worker loops on this machine, the cores shared out among them
    (or ``threads`` torch threads each, when other processes share the cores too)."""

    def __init__(self, workers: int = 1, threads: int | None = None):
        if workers < 1:
            raise ConfigError(f"--workers: expected at least 1, got {workers}")
        self.workers, self.threads = workers, threads

    def run(self, ctx: StudyContext) -> None:
        run_workers(ctx, self.workers, self.threads)


def _worker_main(ctx: StudyContext, index: int, threads: int) -> None:
    try:
        work(ctx, index, threads)
    except AelabError as e:
        raise SystemExit(f"worker {index}: {e}")
    except KeyboardInterrupt as e:  # its trial is marked interrupted; the parent prints the one line
        raise SystemExit(128 + getattr(e, "signum", 2)) from None


def warm_up(ctx: StudyContext) -> None:
    """Pay once, before forking, what every worker would pay on its first
    trial: importing torch and the gradient trainer, and loading the base
    config's data set (cached in-process).  (Building an optimizer no longer
    imports torch._dynamo: :mod:`aelab.training.lazy_dynamo`.)"""
    importlib.import_module("aelab.training.gradient")
    try:
        load_dataset(load_config(ctx.base).data)
    except AelabError:
        pass  # a trial will report it


def _context():
    """fork where it is safe and cheap (Linux: workers inherit the warmed-up
    imports and data), spawn elsewhere (macOS, Windows)."""
    return mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")


def run_workers(ctx: StudyContext, workers: int, threads: int | None = None) -> None:
    """Run ``workers`` loops: in this process for one, else in worker
    processes with the cores shared out so they do not oversubscribe."""
    threads = threads or max(1, cpus() // workers)  # fixed, not load-dependent: a study's results repeat
    ctx = replace(ctx, workers=workers)
    if workers == 1:
        work(ctx, 0, threads)
        return
    warm_up(ctx)
    procs = [_context().Process(target=_worker_main, args=(ctx, i, threads), daemon=False)
             for i in range(workers)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()  # SIGTERM: each worker marks its trial interrupted and exits
        for p in procs:
            p.join(timeout=30)
        raise
    bad = [p.exitcode for p in procs if p.exitcode]
    if bad:
        print(f"warning: {len(bad)} worker(s) exited abnormally (codes {bad}); "
              f"their trials are retried by the next run", file=sys.stderr)  # stdout stays the results


# ------------------------------------------------------------------- ray


class RayExecutor(Executor):
    """Trials as Ray tasks on a cluster (``address``: ``auto``, ``HOST:PORT`` or
    ``ray://HOST:PORT``) or on a Ray instance started here when none is given.
    An already-initialised Ray (``ray.init`` by the caller) is used as it is."""

    def __init__(self, address: str | None = None, tasks: int | None = None,
                 cpus: float = 1.0, gpus: float = 0.0):
        if not (cpus > 0 and math.isfinite(cpus)):
            raise ConfigError(f"--cpus-per-trial: expected a number > 0, got {cpus:g}")
        if not (gpus >= 0 and math.isfinite(gpus)):
            raise ConfigError(f"--gpus-per-trial: expected a number >= 0, got {gpus:g}")
        if tasks is not None and tasks < 1:
            raise ConfigError(f"--workers: expected at least 1 trial in flight, got {tasks}")
        self.address, self.tasks, self.cpus, self.gpus = address, tasks, cpus, gpus

    def check(self) -> None:
        _import_ray()
        if self.address and self.address != "auto":
            probe(self.address)

    def run(self, ctx: StudyContext) -> None:
        ray = _import_ray()
        owned = connect(ray, self.address)
        try:
            self._drive(ray, replace(ctx, study_dir=ctx.study_dir.resolve()))
        finally:
            if owned:
                ray.shutdown()

    def slots(self, ray) -> int:
        """Trials in flight: as asked, else as many as the cluster's CPUs hold."""
        if self.tasks:
            return self.tasks
        return max(1, int(ray.cluster_resources().get("CPU", 1) // self.cpus))

    def _drive(self, ray, ctx: StudyContext) -> None:
        """Keep up to ``slots`` one-trial tasks in flight until the study is finished."""
        study = create_or_load(ctx)
        task = ray.remote(_ray_trial).options(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=3)
        threads = max(1, int(self.cpus))
        slots, pending, index, crashed = self.slots(ray), [], 0, 0
        ctx = replace(ctx, workers=slots)
        while True:
            while len(pending) < slots and not finished(study, ctx):
                pending.append(task.remote(ctx, index, threads))
                index += 1
            if not pending:
                break
            done, pending = ray.wait(pending, num_returns=1)
            crashed += _collect(ray, done[0])
        if crashed:
            print(f"warning: {crashed} Ray task(s) crashed; their trials are retried by the next run",
                  file=sys.stderr)


def _ray_trial(ctx: StudyContext, index: int, threads: int) -> None:
    """One Ray task: one trial of the ordinary worker loop (or none if the
    study finished meanwhile)."""
    work(ctx, index, threads, max_trials=1)


def _collect(ray, ref) -> int:
    """1 if the task's worker crashed for good, 0 if it returned; a user error
    raised inside the task is raised here as the same one line."""
    try:
        ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        if isinstance(e.cause, AelabError):
            raise e.cause from None
        raise
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError):
        return 1
    return 0


def _import_ray():
    try:
        import ray
    except ModuleNotFoundError:
        raise ConfigError("--executor ray: needs Ray (pip install 'aelab[ray]')") from None
    return ray


def connect(ray, address: str | None) -> bool:
    """Join the cluster at ``address`` (or start a local Ray instance); True if
    this call did it (so the caller shuts it down).  An unreachable address is
    one line after at most ``PROBE_SECONDS``, not Ray's minute of retries."""
    if ray.is_initialized():
        return False
    if address and address != "auto":
        probe(address)
    try:
        if address:
            ray.init(address=address, logging_level=logging.ERROR)
        else:
            ray.init(include_dashboard=False, logging_level=logging.ERROR)
    except ConnectionError as e:
        raise ConfigError(f"--address {address}: {' '.join(str(e).split())[:200]}") from None
    return True


def probe(address: str) -> None:
    """Fail fast when nothing listens at a Ray address's host and port."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host:
        host, port = port, str(RAY_PORT)
    try:
        with socket.create_connection((host, int(port)), timeout=PROBE_SECONDS):
            pass
    except ValueError:
        raise ConfigError(f"--address {address}: expected auto, HOST:PORT or ray://HOST:PORT") from None
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise ConfigError(f"--address {address}: no Ray cluster reachable there ({reason}; "
                          f"waited at most {PROBE_SECONDS} s)") from None


def make_executor(name: str = "local", workers: int | None = None, address: str | None = None,
                  cpus: float = 1.0, gpus: float = 0.0) -> Executor:
    """The executor the CLI's ``--executor`` names, its options checked."""
    if name == "local":
        if address is not None or cpus != 1.0 or gpus != 0.0:
            raise ConfigError("--address, --cpus-per-trial and --gpus-per-trial need --executor ray")
        return LocalExecutor(1 if workers is None else workers)
    if name == "ray":
        return RayExecutor(address=address, tasks=workers, cpus=cpus, gpus=gpus)
    raise ConfigError(f"--executor {name}: expected one of {', '.join(EXECUTORS)}")
