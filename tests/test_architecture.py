"""The project's layering, read from the source: imports run one way, and each concern has one owner.

The import graph is built from the AST of every module (imports under ``if TYPE_CHECKING:`` are
types only and do not count). From the ground up the layers are ``common`` (the error tree),
``schemas``, ``validation``, ``federation``, ``nodes``, ``coordinator`` and ``tillit`` (CLI, demo,
local deployment); a module may import only its own layer and those below it. These tests fail when
someone adds an upward import, a cycle between files, a second importer of Great Expectations or a
second source of randomness.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("common", "schemas", "validation", "federation", "nodes", "coordinator", "tillit")
#: the only modules that may draw random values, and why
RANDOMNESS = {
    "federation.privacy": "privacy noise, drawn by OpenDP",
    "schemas.synth": "the synthetic municipality generator (not privacy noise)",
}
#: modules that may use ``secrets``/``os.urandom`` for key material, tokens and masks — never for data values
KEY_MATERIAL = {
    "nodes.secret": "the node secret behind pseudonyms",
    "coordinator.principals": "bearer tokens",
    "coordinator.web.sessions": "web session ids and CSRF tokens",
    "federation.crypto": "linkage keys, homomorphic-encryption masks and flooding noise",
}


@dataclass(frozen=True)
class Import:
    source: str      # the importing module, dotted
    target: str      # the imported module, dotted (a project module when it resolves to one)
    line: int


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    found = {}
    for layer in LAYERS:
        for path in sorted((root / layer).rglob("*.py")):
            if "migrations" not in path.parts:
                found[_module_name(path, root)] = path
    return found


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> Iterator[Import]:
    """Every import a module makes at run time, resolved to a project module where it is one."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = _type_checking_lines(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in typing_only:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(name, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield Import(name, candidate if candidate in modules else base, node.lineno)


def _graph(root: Path = ROOT) -> tuple[dict[str, Path], list[Import]]:
    modules = project_modules(root)
    return modules, [i for name, path in modules.items() for i in imports_of(name, path, modules)]


def _layer(module: str) -> int | None:
    head = module.split(".")[0]
    return LAYERS.index(head) if head in LAYERS else None


def upward_imports(edges: list[Import]) -> list[str]:
    found = []
    for edge in dict.fromkeys(edges):
        source, target = _layer(edge.source), _layer(edge.target)
        if source is not None and target is not None and target > source:
            found.append(f"{edge.source}:{edge.line} imports {edge.target} ({LAYERS[target]} is above "
                         f"{LAYERS[source]})")
    return found


def cycles(modules: dict[str, Path], edges: list[Import]) -> list[list[str]]:
    """Strongly connected components of more than one file (Tarjan)."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for edge in edges:
        if edge.target in modules and edge.target != edge.source:
            graph[edge.source].add(edge.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _allowed(module: str, owners: dict[str, str]) -> bool:
    return any(module == owner or module.startswith(owner + ".") for owner in owners)


def randomness_outside_owners(root: Path = ROOT) -> list[str]:
    """Random draws outside the privacy module and the generator; key material outside its owners."""
    found = []
    for name, path in project_modules(root).items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            text = ast.unparse(node) if isinstance(node, (ast.Attribute, ast.Import, ast.ImportFrom)) else ""
            draws = (isinstance(node, ast.Attribute) and text in ("np.random", "numpy.random")) or (
                isinstance(node, ast.Import) and any(a.name in ("random", "numpy.random") for a in node.names)) or (
                isinstance(node, ast.ImportFrom) and (node.module in ("random", "numpy.random") or (
                    node.module == "numpy" and any(a.name == "random" for a in node.names))))
            keys = (isinstance(node, ast.Import) and any(a.name == "secrets" for a in node.names)) or (
                isinstance(node, ast.ImportFrom) and node.module == "secrets") or text == "os.urandom"
            if draws and not _allowed(name, RANDOMNESS):
                found.append(f"{name}:{node.lineno} draws random values ({text}); noise comes from federation.privacy")
            if keys and not _allowed(name, KEY_MATERIAL) and not _allowed(name, RANDOMNESS):
                found.append(f"{name}:{node.lineno} makes key material ({text}) outside {sorted(KEY_MATERIAL)}")
    return found


# -- the project as it is ----------------------------------------------------------------------------------------

def test_every_layer_imports_only_itself_and_layers_below() -> None:
    # Prepare
    _, edges = _graph()
    # Execute
    found = upward_imports(edges)
    # Assert
    assert found == []


def test_no_import_cycle_between_files() -> None:
    modules, edges = _graph()
    assert cycles(modules, edges) == []


def test_only_validation_imports_great_expectations() -> None:
    _, edges = _graph()
    importers = sorted({e.source for e in edges if e.target.split(".")[0] == "great_expectations"})
    assert importers and all(m.startswith("validation.") or m == "validation" for m in importers), importers


def test_only_the_privacy_module_draws_noise_and_key_material_has_named_owners() -> None:
    assert randomness_outside_owners() == []


def test_common_imports_nothing_of_the_project() -> None:
    _, edges = _graph()
    assert [e for e in edges if e.source.startswith("common") and _layer(e.target) not in (None, 0)] == []


def test_every_package_states_its_public_surface() -> None:
    missing = []
    for name, path in project_modules().items():
        if path.name == "__init__.py":
            tree = ast.parse(path.read_text(encoding="utf-8"))
            names = [t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
                     if isinstance(t, ast.Name)]
            if "__all__" not in names:
                missing.append(name)
    assert missing == []


# -- the checks themselves can fail ------------------------------------------------------------------------------

@pytest.fixture()
def toy(tmp_path: Path) -> Path:
    for layer in LAYERS:
        (tmp_path / layer).mkdir()
        (tmp_path / layer / "__init__.py").write_text("__all__ = []\n")
    return tmp_path


def test_an_upward_import_is_named(toy: Path) -> None:
    # Prepare: a federation module that imports the coordinator
    (toy / "federation" / "bad.py").write_text("from coordinator import db\n")
    (toy / "coordinator" / "db.py").write_text("X = 1\n")
    # Execute
    _, edges = _graph(toy)
    # Assert
    assert upward_imports(edges) == ["federation.bad:1 imports coordinator.db (coordinator is above federation)"]


def test_a_type_only_import_is_not_an_upward_import(toy: Path) -> None:
    (toy / "federation" / "typed.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from coordinator import db\n")
    (toy / "coordinator" / "db.py").write_text("X = 1\n")
    _, edges = _graph(toy)
    assert upward_imports(edges) == []


def test_a_cycle_between_files_is_found(toy: Path) -> None:
    (toy / "nodes" / "a.py").write_text("from nodes import b\n")
    (toy / "nodes" / "b.py").write_text("def f():\n    from nodes.a import g\n")
    modules, edges = _graph(toy)
    assert cycles(modules, edges) == [["nodes.a", "nodes.b"]]


def test_noise_outside_the_privacy_module_is_found(toy: Path) -> None:
    (toy / "nodes" / "noisy.py").write_text("import numpy as np\nx = np.random.normal()\n")
    (toy / "federation" / "privacy.py").write_text("import numpy as np\nx = np.random.normal()\n")
    (toy / "coordinator" / "keys.py").write_text("import secrets\n")
    found = sorted(randomness_outside_owners(toy))
    assert len(found) == 2 and found[0].startswith("coordinator.keys:1") and found[1].startswith("nodes.noisy:2")


def status_assignments(root: Path = ROOT) -> list[str]:
    """Assignments to a ``.status`` attribute outside the lifecycle module (which owns every transition)."""
    found = []
    for name, path in project_modules(root).items():
        if name == "coordinator.lifecycle" or not name.startswith("coordinator"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else [])
            for target in targets:
                for element in (target.elts if isinstance(target, ast.Tuple) else [target]):
                    if isinstance(element, ast.Attribute) and element.attr == "status":
                        found.append(f"{name}:{node.lineno}")
    return found


def test_only_the_lifecycle_module_changes_a_study_status() -> None:
    assert status_assignments() == []


def test_a_status_change_outside_the_lifecycle_is_found(toy: Path) -> None:
    (toy / "coordinator" / "runner.py").write_text("def f(study):\n    study.status, x = 'released', 1\n")
    assert status_assignments(toy) == ["coordinator.runner:2"]
