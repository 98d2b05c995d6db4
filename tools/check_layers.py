#!/usr/bin/env python3
"""Check the import structure of ``src/forgeml``: layers only import downwards, no circles.

Every top-level module and package of ``forgeml`` belongs to one layer (DESIGN.md section 2):

    interface   cli, http, ui, api, __init__, __main__, testing (test support: runs servers)
    workflow    workflows, loop, pipeline
    capability  data, train, evaluate, registry, optimize, serve, batch, monitor, deploy
    foundation  config, errors, store, security, tracking, examples, _version, ...

A module may import its own layer or a lower one. A package missing from the table is an error,
so a new package has to be placed before it can land. An import circle is a set of forgeml
modules that import each other, counting every import statement in a module (at the top, under
``TYPE_CHECKING`` or inside a function): a deferred import hides a circle from the interpreter,
not from the reader.

Usage: ``python tools/check_layers.py [PROJECT_ROOT]``; prints one line per problem and exits 1
when there is any.
"""

from __future__ import annotations

import ast
import graphlib
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

FOUNDATION, CAPABILITY, WORKFLOW, INTERFACE = range(4)
LAYER_NAMES = ("foundation", "capability", "workflow", "interface")
LAYERS: dict[str, int] = {
    "_version": FOUNDATION,
    "_imports": FOUNDATION,
    "_json": FOUNDATION,
    "config": FOUNDATION,
    "errors": FOUNDATION,
    "refs": FOUNDATION,
    "metrics": FOUNDATION,
    "store": FOUNDATION,
    "security": FOUNDATION,
    "tracking": FOUNDATION,
    "testing": INTERFACE,  # test support: it runs real servers (forgeml.http)
    "examples": FOUNDATION,
    "data": CAPABILITY,
    "train": CAPABILITY,
    "evaluate": CAPABILITY,
    "registry": CAPABILITY,
    "optimize": CAPABILITY,
    "serve": CAPABILITY,
    "batch": CAPABILITY,
    "monitor": CAPABILITY,
    "deploy": CAPABILITY,
    "workflows": WORKFLOW,
    "loop": WORKFLOW,
    "pipeline": WORKFLOW,
    "cli": INTERFACE,
    "http": INTERFACE,
    "ui": INTERFACE,
    "api": INTERFACE,
    "__init__": INTERFACE,
    "__main__": INTERFACE,
}


def module_files(src: Path) -> dict[str, Path]:
    """Every module under ``src/forgeml``: dotted name -> file (a package is its ``__init__``)."""
    modules: dict[str, Path] = {}
    for path in sorted((src / "forgeml").rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imports(path: Path, module: str, is_package: bool) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, names taken from it) for every import statement in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: list[tuple[int, str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target, [alias.name for alias in node.names]))
    return found


def import_graph(src: Path) -> dict[str, dict[str, int]]:
    """forgeml module -> {forgeml module it imports: line of the first such import}.

    ``from package import name`` points at ``package.name`` when that is a module, else at
    the package itself.
    """
    modules = module_files(src)
    graph: dict[str, dict[str, int]] = {}
    for module, path in modules.items():
        edges: dict[str, int] = {}
        for lineno, target, names in _imports(path, module, path.name == "__init__.py"):
            if target.split(".")[0] != "forgeml":
                continue
            targets = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules]
            if len(targets) < len(names) or not names:
                targets.append(target)
            for t in targets:
                # importing forgeml.a.b.c where only forgeml.a.b is a module: point at the module
                while t not in modules and "." in t:
                    t = t.rsplit(".", 1)[0]
                if t != module and t in modules:
                    edges.setdefault(t, lineno)
        graph[module] = edges
    return graph


def layer_of(module: str) -> str:
    """The table key deciding a module's layer: its top-level name under ``forgeml``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_problems(src: Path, graph: Mapping[str, Mapping[str, int]]) -> list[str]:
    """Upward imports and modules of packages that no layer holds."""
    modules = module_files(src)
    root = src.parent
    problems: list[str] = []
    for module in sorted(graph):
        key = layer_of(module)
        where = modules[module].relative_to(root)
        if key not in LAYERS:
            problems.append(
                f"{where}: the package forgeml.{key} has no layer; add it to LAYERS in "
                "tools/check_layers.py"
            )
            continue
        own = LAYERS[key]
        for target, lineno in sorted(graph[module].items()):
            other = LAYERS.get(layer_of(target))
            if other is not None and other > own:
                problems.append(
                    f"{where}:{lineno} imports {target} "
                    f"({LAYER_NAMES[own]} layer -> {LAYER_NAMES[other]} layer)"
                )
    return problems


def import_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The import circles, each a closed path ``[a, b, ..., a]``.

    ``graphlib`` names one circle at a time; the edge that closes it is set aside and the
    search repeats, so every circle is reported at least once.
    """
    edges = {m: {t for t in targets if t in graph} for m, targets in graph.items()}
    cycles: list[list[str]] = []
    while True:
        try:
            graphlib.TopologicalSorter(edges).prepare()
        except graphlib.CycleError as e:
            # graphlib gives the path with each node pointing at the one before it
            path = list(reversed(e.args[1]))
            cycles.append(path)
            edges[path[0]].discard(path[1])
            continue
        return cycles


def cycle_problems(graph: Mapping[str, Mapping[str, int]]) -> list[str]:
    """One line per import circle."""
    return ["import circle: " + " -> ".join(path) for path in import_cycles(graph)]


def check(root: Path) -> list[str]:
    """Every layer and circle problem under ``root/src/forgeml``."""
    src = root / "src"
    graph = import_graph(src)
    return layer_problems(src, graph) + cycle_problems(graph)


def main(argv: list[str]) -> int:
    """Print the problems of the project at ``argv[0]`` (default: this repository)."""
    root = Path(argv[0]) if argv else Path(__file__).resolve().parents[1]
    problems = check(root)
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
