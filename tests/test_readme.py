"""Every command block of README.md and docs/*.md, run, so the docs cannot
drift from the code.

What is collected, in document order (README.md first, then docs/*.md
sorted), one test per command or block, named ``FILE:LINE``:

* every ``aelab ...`` command of every fenced ``bash`` block (lines ending
  in ``\\`` joined, ``# comments`` stripped), run in-process through Typer's
  CliRunner on ``aelab.cli.app``; it must exit 0.  ``make demo`` runs the
  ``aelab`` lines of the Makefile's ``demo:`` recipe (so ``runs/demo`` is
  what ``make demo`` makes); ``make ...``, ``pip ...``, ``source ...`` and
  ``cd ...`` lines are set-up and not collected;
* every ``$ command`` of a plain fenced block, followed by its output
  lines: the command must fail (non-zero exit) and its stderr must be
  exactly the lines shown (e.g. the ``train.epochz`` one-line error);
* every ``yaml`` block: a study file (``space:`` / ``architecture:`` /
  ``objectives:``) through ``aelab.studies.spec.load_study_spec`` and then
  ``aelab.studies.run.prepare`` (what ``aelab study run`` checks before it
  writes anything, e.g. that a grid has no float range without ``step``),
  an LSO experiment file (``kind: lso``) through
  ``aelab.lso.study.load_study``, an experiment spec through
  ``aelab.load_config`` (a fragment such as ``track: {backend: ...}`` merged
  into ``configs/mnist-vae.yaml`` first).  Files are written to
  ``blocks/`` in the working directory, so a ``base: ../configs/...`` path
  resolves as it does for a file in ``studies/``;
* every ``python`` block, executed in the working directory with the same
  reductions as the commands (tracebacks name the document's lines).

Each document runs in its own working directory (``README.md/``,
``docs-lso.md/``, ... under one temporary directory), which holds
symlinks ``configs`` and ``studies`` to the repo's and ``my-study.yaml``,
the README's example study file; the temporary directory holds a
``configs`` symlink too, so that file's ``base: ../configs/digits-ae.yaml``
resolves.  Later commands use run directories made by earlier ones
(``runs/h3``, ``runs/clf``, ...; in docs/*.md also the README's
``runs/demo``, linked in): a command that needs a directory another command
makes runs that command first (so ``-k`` on one command works), and is
skipped, naming it, when that command did not pass.

Reduced sizes (monkeypatched; the commands themselves are run as written):

* every config passes through ``aelab.spec.apply_overrides`` (``load_config``
  calls it through the module global); the wrapper caps the result:
  ``train.epochs`` 1, ``train.generations`` <= 3, ``train.max_seconds``
  <= 5, ``data.samples`` <= 300 (a smaller configured value, e.g. the GA
  configs' 10, is kept), ``eval.max_samples`` 100.  ``eval.figures`` is
  left as configured (report and explore show the figures);
* studies (``aelab study run``): ``aelab.studies.runner.finished`` also
  says "finished" once 2 trials have begun (a grid's queued trials do not
  count), and ``repeats`` is capped at 2 (``aelab.studies.run.load_study_spec``);
  ``--workers 2`` still forks its two worker processes (they inherit the
  patches), and the outputs (results.csv, summary.md, figures, evolution.md)
  are written from the partial study;
* LSO (``aelab lso``, ``aelab lso-study``, the step-wise API): the options
  reaching ``aelab.lso.run.prepare`` are capped at 20 steps, 2 restarts,
  2 in parallel; ``aelab lso-study`` keeps only the methods that use the
  same autoencoder as its last method (3 trainings instead of 6), 3 targets
  and 2 samples per target (``aelab.lso.study.load_study``);
* ``aelab explore`` builds its app, binds an ephemeral port instead of the
  documented one (other jobs on the machine may hold it) and returns
  instead of serving (``uvicorn.Server.run``); the test then checks the
  port it asked for against a ``# http://HOST:PORT/`` comment and that the
  app serves its page;
* an absolute ``/tmp/...`` output path is moved into the working directory.

Not reduced: ``track.backend=tensorboard`` and ``track.backend=mlflow`` run for
real (both extras are in the test extra; the MLflow run takes ~8 s, most
of it MLflow creating its SQLite store).

Skipped, with the reason shown by ``pytest -rs``: commands that need a
service that is not there (``--storage postgresql://...`` on
db.example.org, ``--executor ray --address auto``), commands using shell
variables, and commands that are not ``aelab`` (``python scripts/...``,
``tensorboard``, ``mlflow ui``, ``ray start``, ...).  The bare
``error: ...`` line of docs/reports.md (mlflow missing) has no command to
run: mlflow is installed here, and tests/test_trackers.py covers it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shlex
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SETUP_COMMANDS = {"make", "pip", "source", "cd"}  # set-up lines, not collected (make demo: see above)

# the reductions (see the module docstring)
EPOCHS, GENERATIONS, MAX_SECONDS, SAMPLES, EVAL_SAMPLES = 1, 3, 5.0, 300, 100
STUDY_TRIALS, STUDY_REPEATS = 2, 2
LSO_STEPS, LSO_RESTARTS, LSO_PARALLEL, LSO_TARGETS, LSO_N = 20, 2, 2, 3, 2


# ------------------------------------------------------------ the documents


@dataclass
class Block:
    file: Path
    line: int                      # line of the opening fence (1-based)
    lang: str
    lines: list[tuple[int, str]]   # (line number, text)

    @property
    def text(self) -> str:
        return "".join(t + "\n" for _, t in self.lines)


def fenced_blocks(path: Path) -> list[Block]:
    blocks, current = [], None
    for n, text in enumerate(path.read_text().splitlines(), 1):
        if text.lstrip().startswith("```"):
            if current is None:
                current = Block(path, n, text.strip()[3:].strip(), [])
            else:
                blocks.append(current)
                current = None
        elif current is not None:
            current.lines.append((n, text))
    return blocks


def shell_commands(block: Block) -> list[tuple[int, str]]:
    """(line, command) per command: continuation lines joined, blank and
    comment-only lines dropped."""
    out, pending, start = [], "", 0
    for n, text in block.lines:
        if not pending:
            start = n
        if text.rstrip().endswith("\\"):
            pending += text.rstrip()[:-1] + " "
            continue
        command, pending = (pending + text).strip(), ""
        if command and not command.startswith("#"):
            out.append((start, command))
    return out


def demo_recipe() -> list[list[str]]:
    """The ``aelab`` lines of the Makefile's ``demo:`` recipe."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, t in enumerate(lines) if t.startswith("demo:"))
    recipe = []
    for t in lines[start + 1:]:
        if not t.startswith("\t"):
            break
        argv = shlex.split(t.strip(), comments=True)
        if argv and argv[0].endswith("/aelab"):
            recipe.append(argv[1:])
    assert recipe, "Makefile: the demo recipe runs no aelab command"
    return recipe


# ---------------------------------------------------------------- the steps


@dataclass
class Step:
    where: str                      # README.md:39
    kind: str                       # cli | error | python | yaml | skip
    source: str                     # the command or block as written
    argvs: list[list[str]] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)
    reason: str = ""
    outputs: set[str] = field(default_factory=set)   # run directories it makes
    inputs: set[str] = field(default_factory=set)    # run directories it reads
    deps: list[str] = field(default_factory=list)    # steps that make its inputs
    first_line: int = 0                              # python: the block's first line in its file

    @property
    def doc(self) -> str:
        return self.where.rsplit(":", 1)[0]


RUN_PATH = re.compile(r"(?<![\w/.])runs/[\w.\-]+")


def skip_reason(argv: list[str]) -> str | None:
    line = " ".join(argv)
    if "$" in line:
        return "uses a shell variable"
    if "postgresql://" in line:
        return "needs a PostgreSQL server (db.example.org); tests/test_cluster.py covers the storage"
    if "--executor" in argv and argv[argv.index("--executor") + 1] == "ray":
        return "needs a running Ray cluster (--address auto); tests/test_executors.py covers Ray"
    return None


def outputs_of(argv: list[str]) -> set[str]:
    """The run directories a command makes (``--out``, ``--resume``, a
    study's or LSO study's default directory)."""
    made = set()
    for flag in ("--out", "--resume"):
        if flag in argv:
            made.add(argv[argv.index(flag) + 1].rstrip("/"))
    if "--out" not in argv and argv[:2] == ["study", "run"]:
        made.add(f"runs/study-{study_name(argv[2])}")
    if "--out" not in argv and argv[:1] == ["lso-study"]:
        made.add(f"runs/lso-{study_name(argv[1])}")
    return made


def study_name(arg: str) -> str:
    path = ROOT / arg
    if path.is_file():
        return yaml.safe_load(path.read_text()).get("name") or path.stem
    if arg == "my-study.yaml" and readme_study_file():
        return yaml.safe_load(readme_study_file()).get("name") or "my-study"
    return Path(arg).stem


def readme_study_file() -> str | None:
    """The README's example study file (the yaml block with ``objectives:``)."""
    return next((b.text for b in fenced_blocks(ROOT / "README.md")
                 if b.lang == "yaml" and "objectives:" in b.text), None)


def collect() -> list[Step]:
    steps: list[Step] = []
    for path in DOCS:
        rel = path.relative_to(ROOT)
        for block in fenced_blocks(path):
            if block.lang in ("bash", "sh", "shell"):
                steps += bash_steps(rel, block)
            elif block.lang == "" and any(t.startswith("$ ") for _, t in block.lines):
                steps += transcript_steps(rel, block)
            elif block.lang == "python":
                steps.append(Step(f"{rel}:{block.line}", "python", block.text,
                                  inputs=set(RUN_PATH.findall(block.text)), first_line=block.line + 1))
            elif block.lang == "yaml":
                steps.append(Step(f"{rel}:{block.line}", "yaml", block.text))
    made: dict[tuple[str, str], str] = {}  # (document, run path) -> the step that makes it there
    for s in steps:
        if s.kind == "python":  # out="runs/x" is its own output
            s.outputs = set(re.findall(r"out=[\"'](runs/[\w.\-]+)", s.source))
            s.inputs -= s.outputs
        for p in sorted(s.inputs):  # made by this document, else by an earlier one (README first)
            found = made.get((s.doc, p)) or next((w for (d, q), w in reversed(made.items()) if q == p), None)
            if found:
                s.deps.append(found)
        for p in s.outputs:
            made[(s.doc, p)] = s.where
    return steps


def bash_steps(rel: Path, block: Block) -> list[Step]:
    steps = []
    for n, command in shell_commands(block):
        where = f"{rel}:{n}"
        try:
            argv = shlex.split(command, comments=True)
        except ValueError as e:
            steps.append(Step(where, "skip", command, reason=f"not a shell command: {e}"))
            continue
        if not argv:
            continue
        if argv[:2] == ["make", "demo"]:
            argvs = demo_recipe()
            steps.append(Step(where, "cli", command, argvs=argvs, outputs=set().union(*map(outputs_of, argvs))))
            continue
        if argv[0] in SETUP_COMMANDS:
            continue
        if re.fullmatch(r"[A-Za-z_]\w*=.*", argv[0]):
            steps.append(Step(where, "skip", command, reason="sets a shell variable (for the next command)"))
            continue
        if argv[0] != "aelab":
            steps.append(Step(where, "skip", command, reason=f"not an aelab command ({argv[0]})"))
            continue
        argv = argv[1:]
        reason = skip_reason(argv)
        if reason:
            steps.append(Step(where, "skip", command, reason=reason))
            continue
        outputs = outputs_of(argv)
        inputs = {m.rstrip("/") for a in argv for m in RUN_PATH.findall(a)} - (outputs - set(resumed(argv)))
        steps.append(Step(where, "cli", command, argvs=[argv], outputs=outputs, inputs=inputs))
    return steps


def resumed(argv: list[str]) -> list[str]:
    return [argv[argv.index("--resume") + 1]] if "--resume" in argv else []


def transcript_steps(rel: Path, block: Block) -> list[Step]:
    """``$ command`` lines, each followed by the output it shows."""
    steps: list[Step] = []
    for n, text in block.lines:
        if text.startswith("$ "):
            argv = shlex.split(text[2:], comments=True)
            assert argv[0] == "aelab", f"{rel}:{n}: a transcript of something other than aelab"
            steps.append(Step(f"{rel}:{n}", "error", text[2:], argvs=[argv[1:]]))
        elif steps and text.strip():
            steps[-1].expected.append(text.rstrip())
    return steps


STEPS = collect()
BY_WHERE = {s.where: s for s in STEPS}


# -------------------------------------------------------------- reductions


def _cap(raw: dict) -> dict:
    if not isinstance(raw, dict) or not {"data", "model", "train"} & set(raw):
        return raw
    train, data, ev = (raw.setdefault(k, {}) for k in ("train", "data", "eval"))
    if not all(isinstance(x, dict) for x in (train, data, ev)):
        return raw  # let validation say what is wrong
    from aelab.training.registry import spec_classes
    fields = getattr(spec_classes().get(train.get("method", "gradient")), "model_fields", {})
    if "epochs" in fields or "epochs" in train:  # a study's template may hold both (its trials mix methods)
        train["epochs"] = EPOCHS
    if "generations" in fields or "generations" in train:
        train["generations"] = min(_num(train.get("generations"), GENERATIONS), GENERATIONS)
    if train.get("max_seconds") is not None:
        train["max_seconds"] = min(_num(train["max_seconds"], MAX_SECONDS), MAX_SECONDS)
    data["samples"] = min(_num(data.get("samples"), SAMPLES), SAMPLES)
    ev["max_samples"] = EVAL_SAMPLES
    return raw


def _num(value, default):
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else default


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """The shared working directory, with every reduction in place."""
    import uvicorn
    from optuna.trial import TrialState

    import aelab.explore
    import aelab.lso.run
    import aelab.lso.study
    import aelab.spec
    import aelab.studies.run
    import aelab.studies.runner

    import torch

    root = tmp_path_factory.mktemp("readme")
    (root / "configs").symlink_to(ROOT / "configs")  # my-study.yaml's ../configs
    threads = torch.get_num_threads()  # commands may change it; later test modules expect conftest's

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)  # restored afterwards; each step runs in its document's directory
        apply_overrides = aelab.spec.apply_overrides
        mp.setattr(aelab.spec, "apply_overrides", lambda raw, overrides: _cap(apply_overrides(raw, overrides)))

        finished = aelab.studies.runner.finished

        def enough(study, ctx) -> bool:  # queued (WAITING) trials of a grid do not count
            begun = [t for t in study.get_trials(deepcopy=False) if t.state != TrialState.WAITING]
            return len(begun) >= STUDY_TRIALS or finished(study, ctx)
        mp.setattr(aelab.studies.runner, "finished", enough)
        load_study_spec = aelab.studies.run.load_study_spec

        def fewer_repeats(source):
            spec, cfg, folder = load_study_spec(source)
            return spec.model_copy(update={"repeats": min(spec.repeats, STUDY_REPEATS)}), cfg, folder
        mp.setattr(aelab.studies.run, "load_study_spec", fewer_repeats)

        prepare = aelab.lso.run.prepare

        def short_lso(classifier, decoder=None, options=None, *args, **kwargs):
            if options is not None:
                options = dataclasses.replace(options, steps=min(options.steps, LSO_STEPS),
                                              restarts=min(options.restarts, LSO_RESTARTS),
                                              parallel=min(options.parallel, LSO_PARALLEL))
            return prepare(classifier, decoder, options, *args, **kwargs)
        mp.setattr(aelab.lso.run, "prepare", short_lso)
        mp.setattr(aelab.lso.study, "prepare", short_lso)
        load_study = aelab.lso.study.load_study

        def small_lso_study(path):
            spec, base = load_study(path)
            last = spec.methods[-1].decoder or spec.methods[-1].realism
            methods = [m for m in spec.methods if (m.decoder or m.realism) == last]
            return spec.model_copy(update={"methods": methods, "targets": spec.targets[:LSO_TARGETS],
                                           "n": min(spec.n, LSO_N)}), base
        mp.setattr(aelab.lso.study, "load_study", small_lso_study)

        served = []  # the apps `aelab explore` would have served, and where
        listen = aelab.explore.listen

        def any_port(host, port):
            served.append((host, port))
            return listen(host, 0)
        mp.setattr(aelab.explore, "listen", any_port)

        def no_serving(server, sockets=None):
            served.append(server.config.app)  # after listen's (host, port)
            for sock in sockets or []:
                sock.close()
        mp.setattr(uvicorn.Server, "run", no_serving)
        yield Session(root, served)
    torch.set_num_threads(threads)


class Session:
    """Runs the steps, each once, dependencies first; remembers outcomes."""

    def __init__(self, root: Path, served: list):
        self.root, self.served = root, served
        self.outcome: dict[str, tuple[str, str]] = {}  # where -> (passed | failed | skipped, message)
        self.runner = CliRunner()

    def workdir(self, doc: str) -> Path:
        """The document's working directory (README.md -> ROOT/README.md/)."""
        wd = self.root / doc.replace("/", "-")
        if not wd.exists():
            wd.mkdir()
            for name in ("configs", "studies"):
                (wd / name).symlink_to(ROOT / name)
            if readme_study_file():
                (wd / "my-study.yaml").write_text(readme_study_file())
        return wd

    def enter(self, step: Step) -> None:
        """chdir to the step's document; link in what another document made."""
        wd = self.workdir(step.doc)
        os.chdir(wd)
        for dep in step.deps:
            other = BY_WHERE[dep]
            if other.doc == step.doc:
                continue
            for p in other.outputs & step.inputs:
                if not (wd / p).exists():
                    (wd / p).parent.mkdir(parents=True, exist_ok=True)
                    (wd / p).symlink_to(self.workdir(other.doc) / p)

    def ensure(self, where: str) -> None:
        """Run ``where`` once (what it needs first); skip it if a step that
        makes what it needs did not pass."""
        step = BY_WHERE[where]
        for dep in step.deps:
            if dep not in self.outcome:
                with contextlib.suppress(Exception, pytest.fail.Exception, pytest.skip.Exception):
                    self.ensure(dep)  # its outcome is recorded
            status, _ = self.outcome[dep]
            if status != "passed":
                made = ", ".join(sorted(BY_WHERE[dep].outputs & step.inputs))
                pytest.skip(f"{where} needs {made}, made by {dep}, which {status}")
        if where in self.outcome:  # already run for a step that needed it
            status, message = self.outcome[where]
            if status == "failed":
                pytest.fail(message, pytrace=False)
            if status == "skipped":
                pytest.skip(message)
            return
        try:
            self.enter(step)
            getattr(self, f"run_{step.kind}")(step)
        except pytest.skip.Exception as e:
            self.outcome[where] = ("skipped", str(e))
            raise
        except pytest.fail.Exception as e:
            self.outcome[where] = ("failed", str(e))
            raise
        except Exception:
            self.outcome[where] = ("failed", f"{where}: `{step.source.strip()}`\n{traceback.format_exc()}")
            raise
        self.outcome[where] = ("passed", "")

    # -- kinds

    def invoke(self, argv: list[str]):
        argv = [str(Path.cwd() / "abs-tmp" / a[len("/tmp/"):]) if a.startswith("/tmp/") else a for a in argv]
        if argv and argv[0] == "explore":
            self.served.clear()
        return self.runner.invoke(_app(), argv)

    def run_cli(self, step: Step) -> None:
        for argv in step.argvs:
            start = time.perf_counter()
            r = self.invoke(argv)
            detail = "" if r.exception is None or isinstance(r.exception, SystemExit) else \
                "".join(traceback.format_exception(r.exception))
            if r.exit_code != 0:
                pytest.fail(f"{step.where}: `aelab {shlex.join(argv)}` exited {r.exit_code} "
                            f"after {time.perf_counter() - start:.1f} s\n"
                            f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}\n{detail}", pytrace=False)
            if argv[0] == "explore":
                self.check_explorer(step, r)

    def check_explorer(self, step: Step, r) -> None:
        """The app was built and would be served where the comment says."""
        from starlette.testclient import TestClient

        assert len(self.served) == 2, f"{step.where}: `{step.source}` did not start a server\n{r.stdout}"
        (host, port), app = self.served
        assert "aelab explore: http://" in r.stdout, f"{step.where}: no URL printed\n{r.stdout}"
        shown = re.search(r"#.*http://([\w.\[\]:]+):(\d+)/", step.source)
        if shown:
            assert (host, port) == (shown[1], int(shown[2])), \
                f"{step.where}: the comment says http://{shown[1]}:{shown[2]}/, it would serve http://{host}:{port}/"
        page = TestClient(app, base_url="http://127.0.0.1").get("/")
        assert page.status_code == 200, f"{step.where}: the explorer's page: {page.status_code} {page.text}"

    def run_error(self, step: Step) -> None:
        r = self.invoke(step.argvs[0])
        shown = "\n".join(step.expected)
        if r.exit_code == 0:
            pytest.fail(f"{step.where}: `{step.source}` is shown failing with\n{shown}\n"
                        f"but it exited 0:\n{r.stdout}", pytrace=False)
        got = [t.rstrip() for t in r.stderr.strip().splitlines()]
        if got != step.expected:
            pytest.fail(f"{step.where}: `{step.source}` is shown printing\n{shown}\n"
                        f"but printed (exit {r.exit_code}):\n{r.stderr}", pytrace=False)

    def run_python(self, step: Step) -> None:
        code = compile("\n" * (step.first_line - 1) + step.source, step.doc, "exec")  # tracebacks: FILE, line
        failure = None
        try:
            exec(code, {"__name__": "__readme__"})
        except Exception:
            failure = traceback.format_exc()
        if failure:
            pytest.fail(f"{step.where}: the python block raised:\n{failure}", pytrace=False)

    def run_yaml(self, step: Step) -> None:
        import aelab
        from aelab.errors import AelabError
        from aelab.lso.study import load_study
        from aelab.studies.run import prepare
        from aelab.studies.spec import load_study_spec

        data = yaml.safe_load(step.source)
        folder = Path.cwd() / "blocks"
        folder.mkdir(exist_ok=True)
        path = folder / (step.where.replace("/", "-").replace(":", "-") + ".yaml")
        failure = None
        try:
            if data.get("kind") == "lso":
                path.write_text(step.source)
                load_study(path)
            elif {"space", "architecture", "objectives"} & set(data):
                path.write_text(step.source)
                load_study_spec(path)
                prepare(path, out=folder / "study")  # what `aelab study run` checks before writing anything
            else:
                if not {"data", "model"} <= set(data):  # a fragment: on top of a shipped config
                    base = yaml.safe_load((ROOT / "configs" / "mnist-vae.yaml").read_text())
                    data = _merge(base, data)
                path.write_text(yaml.safe_dump(data))
                aelab.load_config(path)
        except AelabError as e:
            failure = str(e)
        if failure:
            pytest.fail(f"{step.where}: the yaml block does not validate: {failure}", pytrace=False)

    def run_skip(self, step: Step) -> None:
        pytest.skip(f"{step.where}: `{' '.join(step.source.split('#')[0].split())}`: {step.reason}")


def _merge(base: dict, extra: dict) -> dict:
    """``extra`` over ``base``, mapping by mapping; a section that names
    another model kind or training method replaces the base's (it shares
    none of its fields)."""
    out = dict(base)
    for k, v in extra.items():
        old = out.get(k) or {}
        switched = isinstance(v, dict) and any(f in v and v[f] != old.get(f) for f in ("kind", "method"))
        out[k] = v if switched else _merge(old, v) if isinstance(v, dict) else v
    return out


def _app():
    from aelab.cli import app
    return app


def test_docs_have_commands():
    """The parser found the README's command blocks (an empty parse would
    pass every other test trivially)."""
    readme = [s for s in STEPS if s.where.startswith("README.md:")]
    assert sum(s.kind == "cli" for s in readme) >= 15, [s.where for s in readme]
    assert any(s.kind == "error" for s in readme) and any(s.kind == "python" for s in readme)


@pytest.mark.parametrize("where", [s.where for s in STEPS])
def test_doc_block(where, work):
    work.ensure(where)
