"""The rules of the house (README "Package map"), checked on the source so they stay kept:
imports point downward only, no module imports another module's private names, no import cycle,
and the code is formatted and linted by ruff."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "mothlab"

#: Layer of each top-level part of the package; a module may import its own layer and the layers
#: below it. ``progress``, ``store``, ``jobs``, ``runtime`` and ``palette`` are neutral low modules (layer 0).
LAYERS = {
    "progress": 0, "store": 0, "jobs": 0, "runtime": 0, "palette": 0,
    "moth": 1, "data": 2, "nets": 3, "analysis": 4, "control": 5,
    "plots": 6, "figures": 6, "report": 7, "ui": 8, "bench": 9, "cli": 10,
    "__init__": 11, "__main__": 11,
}  # fmt: skip


def _modules():
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _imports(name: str, path: Path, *, top_level_only: bool):
    """(imported module, imported names, line) for every import of a ``mothlab`` module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "mothlab":
                    yield a.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] == "mothlab":
                yield mod, [a.name for a in node.names], node.lineno


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_part_of_the_package_has_a_layer():
    parts = {_part(name) for name, _ in _modules()}
    assert parts <= set(LAYERS), f"give these a layer in LAYERS: {sorted(parts - set(LAYERS))}"


def test_imports_point_downward_only():
    wrong = []
    for name, path in _modules():
        here = LAYERS[_part(name)]
        for mod, _, line in _imports(name, path, top_level_only=False):
            if mod == "mothlab":
                continue
            if LAYERS[_part(mod)] > here:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {mod}")
    assert not wrong, "upward imports:\n" + "\n".join(wrong)


def test_no_module_imports_a_private_name_of_another():
    wrong = []
    for name, path in _modules():
        for mod, names, line in _imports(name, path, top_level_only=False):
            private_mod = any(p.startswith("_") and not p.startswith("__") for p in mod.split("."))
            private_names = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private_mod or private_names:
                wrong.append(f"{path.relative_to(ROOT)}:{line} from {mod} import {names}")
    assert not wrong, "private imports:\n" + "\n".join(wrong)


def test_no_import_cycle_at_module_level():
    modules = dict(_modules())
    graph = {}
    for name, path in modules.items():
        deps = set()
        for mod, names, _ in _imports(name, path, top_level_only=True):
            # `from pkg import sub` imports the submodule pkg.sub when there is one
            subs = [f"{mod}.{n}" for n in names if f"{mod}.{n}" in modules]
            deps.update(subs or [mod])
        graph[name] = {d for d in deps if d in modules and d != name}
    # a package's __init__ importing its own submodules is how packages work, not a cycle
    for name in graph:
        graph[name] = {d for d in graph[name] if not (d.startswith(name + ".") and name in modules)}
    state, stack, cycles = {}, [], []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for d in sorted(graph[n]):
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d) :] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize(
    "args", [["format", "--check", "--diff"], ["check"]], ids=["ruff-format", "ruff-check"]
)
def test_ruff(args):
    r = subprocess.run(
        [sys.executable, "-m", "ruff", *args, "."], cwd=ROOT, capture_output=True, text=True
    )
    assert r.returncode == 0, f"`ruff {' '.join(args)} .` found:\n{r.stdout[-4000:]}{r.stderr}"
