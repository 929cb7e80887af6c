"""The import graph: no loops, arrows one way, command-line tools imported by nobody."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "permakey_tf"
MODULES = {p.stem: p for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
COMMAND_LINES = {"train", "evaluate", "probe_state"}


def imported_names(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in the file (function-level imports included):
    ``permakey_tf.<module>`` as ``<module>``, anything else by its first dotted part."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "permakey_tf":
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            found.add(parts[1] if parts[0] == "permakey_tf" and len(parts) > 1 else parts[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                found.add(parts[1] if parts[0] == "permakey_tf" and len(parts) > 1 else parts[0])
    return found


def package_graph() -> dict[str, set[str]]:
    return {name: (imported_names(path) & set(MODULES)) - {name} for name, path in MODULES.items()}


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


def test_data_and_models_import_neither_training_nor_evaluation():
    """Arrows point one way: the data pipelines and the models know nothing of how they are
    trained, evaluated or probed."""
    lower = {"data", "noise", "ops", "networks", "batch_norm", "permakey", "transporter", "config",
             "schedules", "registry"}
    upper = {"run_config", "run_flags", "runs", "run_data", "callbacks", "checkpoints", "summaries",
             "quality", "evaluation", "metrics", "eval_report", "eval_figures", "probe_inputs",
             "state_probe", "seed_summary", "export", "export_versions", "final_pointnet", "distribute"}
    assert lower | upper <= set(MODULES), sorted((lower | upper) - set(MODULES))
    wrong = {name: sorted(package_graph()[name] & upper) for name in lower if package_graph()[name] & upper}
    assert not wrong, f"lower-level modules importing upward: {wrong}"


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
