"""The package's shape: no import circle inside lsmigrate/, counting every import written anywhere (inside
functions and under `if TYPE_CHECKING:` too), and counting a module's parent package as imported by it (Python
initialises the package first): so a package's __init__ that imports its own submodules is a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "lsmigrate"


def _module_name(path: Path, package: Path) -> str:
    parts = [package.name, *path.relative_to(package).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth."""
    return [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the lsmigrate modules it imports (a `from X import name` counts X.name when that is a module), and
    its parent package."""
    paths = {_module_name(path, package): path for path in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        is_package = path.name == "__init__.py"
        parent = name.rsplit(".", 1)[0] if "." in name else None
        edges: set[str] = {parent} if parent in paths else set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[:len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in paths else base for alias in node.names]
            edges.update(target for target in targets if target in paths and target != name)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(start: str) -> None:
        nonlocal counter
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_the_checker_sees_a_circle_through_a_function_import(tmp_path):
    package = tmp_path / "lsmigrate"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from .sub import b\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("def f():\n    from .. import a\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n")
    graph = import_graph(package)
    assert graph["lsmigrate.a"] == {"lsmigrate", "lsmigrate.sub.b"} and graph["lsmigrate.c"] == {"lsmigrate", "lsmigrate.a"}
    assert cycles(graph) == [["lsmigrate.a", "lsmigrate.sub.b"]]


def test_the_checker_sees_a_package_that_imports_its_own_submodule(tmp_path):
    package = tmp_path / "lsmigrate"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from .x import f\n")
    (package / "sub" / "x.py").write_text("def f():\n    pass\n")
    assert cycles(import_graph(package)) == [["lsmigrate.sub", "lsmigrate.sub.x"]]


def test_no_import_circle_in_the_package():
    found = cycles(import_graph())
    assert not found, "import circles: " + "; ".join(" <-> ".join(component) for component in found)


def _sources(package: Path = PACKAGE):
    for path in sorted(package.rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def test_no_module_over_400_lines_and_no_function_over_80():
    too_long = []
    for path, tree in _sources():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > 400:
            too_long.append(f"{path.relative_to(PACKAGE.parent)}: {lines} lines")
        too_long += [f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1} lines"
                     for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                     and node.end_lineno - node.lineno + 1 > 80]
    assert not too_long, "split these: " + "; ".join(too_long)


def _names_a_provider(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id == "provider") or \
        (isinstance(node, ast.Attribute) and node.attr == "provider")


def test_no_provider_is_named_outside_its_folder():
    """What differs between clouds is in each one's record (lsmigrate/stores/<name>/): code elsewhere looks the
    provider up, it never asks `provider == "s3"`."""
    named = []
    for path, tree in _sources():
        if path.is_relative_to(PACKAGE / "stores"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare) and any(_names_a_provider(side) for side in [node.left, *node.comparators]) \
                    and any(isinstance(side, ast.Constant) and isinstance(side.value, str)
                            for side in [node.left, *node.comparators]):
                named.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert not named, "provider chains outside stores/: " + ", ".join(named)


def test_each_provider_record_declares_what_its_store_does():
    import importlib

    from lsmigrate.stores.base import Store
    from lsmigrate.stores.registry import PROVIDERS

    for name, record in PROVIDERS.items():
        module = importlib.import_module(f"lsmigrate.stores.{name}.store")
        [store] = [value for value in vars(module).values()
                   if isinstance(value, type) and issubclass(value, Store) and value.__module__ == module.__name__]
        does = {"server_side_copy": store.can_copy_from is not Store.can_copy_from,
                "event_loop_puts": store.put_async is not Store.put_async}
        declared = {what: getattr(record.capabilities, what) for what in does}
        assert declared == does, f"{name}: the record declares {declared}, {store.__name__} does {does}"
