"""The import graph of ``src/aelab``: no circles, and no module importing
from a layer above its own (docs/architecture.md draws the layers).

Every ``import`` counts, at module level or inside a function: a lazy
import that closes a circle is still a circle, only a later one.  So does
the package ``__init__`` an import runs on the way (``from aelab.data.registry
import ...`` runs ``aelab/data/__init__.py`` first), except the importer's
own packages, which are already running.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "aelab"

# Lowest first.  A module belongs to the layer of its most specific
# matching pattern (``x`` is module x, ``x.*`` its submodules, ``x.*.y``
# any submodule ``y`` one level down; an exact name beats a wildcard).
LAYERS = [
    ("core", ["errors", "version", "atomic", "interrupts", "threads", "plugins", "updates", "metrics", "disentanglement", "yardsticks",
              "progress", "outdir", "plots", "spec_base", "train_spec", "spec", "shipped", "", "dataset_registry",
              "models", "models.family", "models.families", "models.families.*.config", "densities",
              "samplers", "samplers.*.config",
              "training", "training.registry", "training.methods", "training.methods.*.config"]),
    ("data", ["data", "data.*"]),
    ("models", ["models.*"]),
    ("run directories", ["runs"]),
    ("training", ["training.methods.*.trainer", "training.evolution_method", "training.*"]),
    ("results", ["evaluation", "generation", "figures", "report", "reporting", "reporting.*", "samplers.*"]),
    ("families", ["models.families.*.family", "models.families.*.game"]),
    ("pipeline", ["pipeline", "api", "cache", "sklearn", "fused_runs", "repeats"]),
    ("applications", ["lso", "lso.*", "studies", "studies.*", "explore", "explore.*"]),
    ("command line", ["cli", "__main__"]),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(p): p for p in SRC.rglob("*.py")}


def imports(name: str) -> set[str]:
    """The aelab modules ``name`` imports anywhere in its text."""
    path = MODULES[name]
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.removeprefix("aelab.") for a in node.names if a.name.startswith("aelab.")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and (node.module == "aelab" or node.module.startswith("aelab.")):
                target = node.module.removeprefix("aelab").removeprefix(".")
            else:
                continue
            for a in node.names:
                sub = f"{target}.{a.name}" if target else a.name
                found.add(sub if sub in MODULES else target)
    found |= {ancestor for m in found for ancestor in _packages_of(m) if ancestor not in _packages_of(name)}
    return {m for m in found if m in MODULES and m != name}


def _packages_of(name: str) -> set[str]:
    """The packages Python imports before module ``name`` ("" is aelab itself)."""
    parts = name.split(".") if name else []
    return {".".join(parts[:i]) for i in range(len(parts))}


GRAPH = {m: imports(m) for m in MODULES}


def layer_of(name: str) -> int:
    found = [(_specificity(p), i) for i, (_, patterns) in enumerate(LAYERS) for p in patterns if _matches(name, p)]
    if not found:
        raise AssertionError(f"aelab.{name} is in no layer: add it to LAYERS (and docs/architecture.md)")
    return max(found)[1]


def _specificity(pattern: str) -> tuple[int, int]:
    """Longer patterns first, then fewer wildcards."""
    parts = pattern.split(".") if pattern else []
    return len(parts), -parts.count("*")


def _matches(name: str, pattern: str) -> bool:
    a, b = name.split(".") if name else [], pattern.split(".") if pattern else []
    if b and b[-1] == "*":
        return len(a) > len(b) - 1 and all(p in ("*", q) for p, q in zip(b[:-1], a))
    return len(a) == len(b) and all(p in ("*", q) for p, q in zip(b, a))


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def upward(graph: dict[str, set[str]], name: str) -> list[str]:
    """The modules ``name`` imports from a layer above its own."""
    return sorted(m for m in graph[name] if layer_of(m) > layer_of(name))


def test_there_are_no_import_circles():
    assert not circles(GRAPH), f"import circles: {circles(GRAPH)}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_imports_from_a_layer_above_its_own(name):
    mine, above = layer_of(name), upward(GRAPH, name)
    assert not above, (f"aelab.{name} ({LAYERS[mine][0]}) imports from a layer above: "
                       + ", ".join(f"{m} ({LAYERS[layer_of(m)][0]})" for m in above))


def test_the_check_sees_a_circle_and_an_upward_import():
    """The checks above cannot pass vacuously: the graph has edges, and a
    planted circle or upward edge is found."""
    assert sum(map(len, GRAPH.values())) > 200
    planted = {m: set(deps) for m, deps in GRAPH.items()}
    planted["spec"].add("pipeline")  # the pipeline imports the spec: now a circle, and an upward import
    assert any({"spec", "pipeline"} <= set(c) for c in circles(planted))
    assert upward(planted, "spec") == ["pipeline"]
    assert "spec" in imports("pipeline")  # the reader sees real imports
    assert "cli" in GRAPH["__main__"] and layer_of("cli") > layer_of("spec")
    assert _matches("models.families.cvae.family", "models.families.*.family")
    assert not _matches("models.build", "models.families.*.family")
    assert LAYERS[layer_of("models.families.vae.family")][0] == "families"
    assert LAYERS[layer_of("models.families.vae.config")][0] == "core"
    assert LAYERS[layer_of("models.build")][0] == "models"
