"""The shape of the code: the floors import only downwards, and no modules import each other
in a circle (read with ast from the source, as a reviewer would)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "sync", "models")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found = {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    found["tui"] = ROOT / "tui.py"
    return found


def imports(path: Path, known: set[str]) -> set[str]:
    """The covey modules `path` imports, anywhere in it (a function-local import is still a
    dependency: it only moves the moment it is paid for), except under `if TYPE_CHECKING:`."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and ast.unparse(block.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
                   for n in ast.walk(block)}
    for node in ast.walk(tree):
        if id(node) in typing_only:  # (names for type hints only: never imported at run time)
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for name in names:
            while name and name not in known:  # `from sync import view`: the module sync.view
                name = name.rpartition(".")[0]
            if name and name != me:
                out.add(name)
    return out


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    edges = {name: imports(path, known) for name, path in found.items()}
    # A package's __init__ is imported with any of its modules; that is not a circle of ours.
    return {name: {d for d in deps if not name.startswith(d + ".")} for name, deps in edges.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_modules_import_each_other_in_a_circle() -> None:
    assert cycles(graph()) == []


def test_the_lower_floors_never_import_the_app() -> None:
    upward = {(name, dep) for name, deps in graph().items() if name.split(".")[0] in ("sync", "models")
              for dep in deps if dep.split(".")[0] in ("app", "tui")}
    assert upward == set()
    models_on_sync = {(n, d) for n, deps in graph().items() if n.startswith("models")
                      for d in deps if d.startswith("sync")}
    assert models_on_sync == set()


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_every_type_ignore_says_why() -> None:
    """A silenced type error names its code and gives a reason on the same line."""
    bare = [f"{p.relative_to(ROOT)}:{n}" for p in modules().values()
            for n, line in enumerate(p.read_text().splitlines(), 1)
            if "type: ignore" in line
            and not re.search(r"type: ignore\[[a-z, -]+\]\s+#\s*\S", line)]
    assert bare == []


def test_no_sql_outside_sync() -> None:
    """The store is sealed: app/ and tui.py reach SQLite only through sync/'s methods.
    (The llm importer reads simonw/llm's own database, not covey's.)"""
    leaks = [f"{p.relative_to(ROOT)}:{n}" for name, p in modules().items()
             if name.split(".")[0] in ("app", "tui") and name != "app.importers.llm_logs"
             for n, line in enumerate(p.read_text().splitlines(), 1)
             if re.search(r"\.conn\b|\.connection\(\)|\bexecute\(", line)]
    assert leaks == []
