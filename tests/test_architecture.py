"""The import graph: subpackages in layers, arrows pointing down only, no loops, command-line
tools imported by nobody."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "permakey_tf"
# module name relative to the package ("models.ops", "config") -> file
MODULES = {".".join(p.relative_to(PACKAGE).with_suffix("").parts): p
           for p in PACKAGE.rglob("*.py") if p.stem != "__init__"}
SUBPACKAGES = sorted({name.split(".")[0] for name in MODULES if "." in name})
# Layer of each subpackage; "" is the foundation (modules directly under permakey_tf/). A module
# may import its own subpackage and lower layers only; models and data share a layer and do not
# import each other.
LAYERS = {"": 0, "models": 1, "data": 1, "scoring": 2, "training": 3, "evaluation": 4, "probes": 5}
COMMAND_LINES = {"train", "evaluate", "probe_state"}


def subpackage(module: str) -> str:
    return module.split(".")[0] if "." in module else ""


def imported_names(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in the file (function-level imports included):
    a package module by its name relative to permakey_tf ("models.ops"), anything else by its
    first dotted part."""
    found = set()

    def add(dotted: str, names=()):
        parts = dotted.split(".")
        if parts[0] != "permakey_tf":
            found.add(parts[0])
            return
        inner = ".".join(parts[1:])
        candidates = [f"{inner}.{n}" if inner else n for n in names]
        submodules = [c for c in candidates if c in MODULES]
        if submodules:
            found.update(submodules)
        elif inner:
            found.add(inner)

    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            add(node.module, [alias.name for alias in node.names])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
    return found


def package_graph() -> dict[str, set[str]]:
    return {name: (imported_names(path) & set(MODULES)) - {name} for name, path in MODULES.items()}


def test_every_module_sits_in_a_known_layer_and_every_subpackage_says_what_it_holds():
    assert set(SUBPACKAGES) | {""} == set(LAYERS), sorted(set(SUBPACKAGES) ^ (set(LAYERS) - {""}))
    for name in SUBPACKAGES:
        docstring = ast.get_docstring(ast.parse((PACKAGE / name / "__init__.py").read_text()))
        assert docstring and len(docstring) > 80, f"permakey_tf/{name}/__init__.py needs its paragraph"


def test_the_import_graph_follows_the_layers():
    """A module imports its own subpackage and lower layers only: the foundation imports no
    subpackage, data and models know nothing of scoring, training, evaluation or probes (nor of
    each other), training never imports evaluation or probes, and nothing imports probes."""
    wrong = {}
    for name, imports in package_graph().items():
        own = subpackage(name)
        for target in imports:
            other = subpackage(target)
            if other == own:
                continue
            if LAYERS[other] >= LAYERS[own]:
                wrong.setdefault(name, []).append(target)
    assert not wrong, f"imports pointing sideways or up: {wrong}"


def test_the_layer_check_sees_an_upward_import(tmp_path):
    """The check above reads function-level imports and both import forms (a model importing
    training would be caught)."""
    module = tmp_path / "fake.py"
    module.write_text("def f():\n    from permakey_tf.training import runs\n"
                      "    import permakey_tf.scoring.matching\n"
                      "    from permakey_tf.evaluation.predictions import predict\n")
    assert imported_names(module) >= {"training.runs", "scoring.matching", "evaluation.predictions"}


def test_the_package_has_no_import_loop():
    """No chain of imports leads from a permakey_tf module back to itself."""
    graph = package_graph()

    def loop_from(start):
        stack, seen = [(start, (start,))], set()
        while stack:
            node, chain = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    return chain + (start,)
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, chain + (nxt,)))
        return None

    loops = [loop for loop in map(loop_from, sorted(graph)) if loop]
    assert not loops, f"import loops: {loops}"


def test_nothing_but_the_tests_imports_a_command_line_tool():
    """train.py, evaluate.py and probe_state.py are thin command lines: the library, bench/,
    experiments/ and examples/ import the library modules they wire together, not them."""
    importers = {}
    for folder in ("permakey_tf", "bench", "experiments", "examples", "tfds_atari"):
        for path in (REPO / folder).rglob("*.py"):
            used = imported_names(path) & COMMAND_LINES
            if used:
                importers[str(path.relative_to(REPO))] = sorted(used)
    for tool in COMMAND_LINES:
        used = imported_names(REPO / f"{tool}.py") & (COMMAND_LINES - {tool})
        if used:
            importers[f"{tool}.py"] = sorted(used)
    assert not importers, f"command-line tools imported by: {importers}"
