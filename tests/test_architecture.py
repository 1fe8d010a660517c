"""The shape of the package: what each room imports, and how big modules and functions get.

Rooms, from the top down; a module imports its own room and the rooms below it, never
one above (imports inside functions and under ``TYPE_CHECKING`` count too: they hide a
cycle, they do not remove it)::

    cli                      the command line
    core                     the job layer
    runners                  local and grid runners
    jobcache, workspace      leaves with a store of their own (neither imports the other)
    defaults                 the default settings (reads errors)
    errors, _fs, _attrdict   shared primitives, importing nothing of the package

``plams_cli/__init__.py`` (lazy names) and ``__main__.py`` (the entry point) stand above
every room. As click's ``tests/test_imports.py`` does, the import of the core is also
checked in a fresh interpreter: it must not load the command line, click, rich or h5py.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import plams_cli
from tests.conftest import python_env

PACKAGE = Path(plams_cli.__file__).resolve().parent

#: Rank of each room: a module may import rooms of a lower rank (and its own room).
RANK = {
    "errors": 0, "_fs": 0, "_attrdict": 0,
    "defaults": 1,
    "jobcache": 2, "workspace": 2,
    "runners": 3,
    "core": 4,
    "cli": 5,
}
#: Imports allowed against the ranks, with why: (importing module, imported module prefix).
UPWARD_ALLOWED = {
    # `plams jobs update` asks the scheduler about grid jobs the cache holds; imported
    # inside the function that needs it, so the cache loads no runner code otherwise.
    ("jobcache/update.py", "plams_cli.runners.grid"),
}

MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
#: Modules over the limit while another part of issue 13 splits them. Delete an entry
#: when its split lands: test_allow_lists_have_no_stale_entries says which.
LONG_MODULES: set[str] = set()
#: Functions over the limit, as (module, qualified name), for the same reason.
LONG_FUNCTIONS: set[tuple[str, str]] = set()


def _modules(package: Path = PACKAGE) -> list[Path]:
    return sorted(package.rglob("*.py"))


def _room(rel: str) -> str:
    return rel.split("/")[0].removesuffix(".py")


def _imports(path: Path, package_dir: Path) -> Iterator[tuple[int, str]]:
    """Every module ``path`` imports, wherever the import statement is; relative ones resolved."""
    rel_parts = path.relative_to(package_dir).parts
    package = ["plams_cli", *rel_parts[:-1]]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names = [module] if node.module or not node.level else [f"{module}.{a.name}" for a in node.names]
            for name in names:
                yield node.lineno, name


def _upward_imports(package: Path = PACKAGE) -> list[str]:
    bad = []
    for path in _modules(package):
        rel = path.relative_to(package).as_posix()
        room = _room(rel)
        if room not in RANK:  # __init__.py, __main__.py of the package itself
            continue
        for line, module in _imports(path, package):
            parts = module.split(".")
            if parts[0] != "plams_cli" or len(parts) < 2:
                continue
            target = parts[1]
            if target == room or RANK.get(target, 99) < RANK[room]:
                continue
            if any(rel == who and module.startswith(prefix) for who, prefix in UPWARD_ALLOWED):
                continue
            bad.append(f"{rel}:{line} ({room}) imports {module} ({target})")
    return bad


def test_no_room_imports_a_room_above_it() -> None:
    assert _upward_imports() == []


def test_the_only_upward_import_is_lazy() -> None:
    """The job cache reaches the grid runner only from inside a function."""
    for who, prefix in UPWARD_ALLOWED:
        tree = ast.parse((PACKAGE / who).read_text())
        top_level = [
            node for node in tree.body
            if isinstance(node, (ast.Import, ast.ImportFrom))
            and any(name.startswith(prefix) for name in _names(node))
        ]
        assert top_level == [], f"{who} imports {prefix} at module level"


def _names(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    return [node.module or ""]


def test_the_import_check_sees_imports_inside_functions_and_relative_ones(tmp_path: Path) -> None:
    package = tmp_path / "plams_cli"
    (package / "runners").mkdir(parents=True)
    (package / "runners" / "probe.py").write_text(
        "from . import local\nfrom plams_cli.errors import GridError\n"
        "def f():\n    from ..core import jobs\n    import plams_cli.cli.main\n"
    )
    (package / "jobcache").mkdir()
    (package / "jobcache" / "update.py").write_text("def f():\n    from plams_cli.runners.grid import GridRunner\n")
    (package / "jobcache" / "store.py").write_text("from plams_cli.runners.grid import GridRunner\n")
    assert _upward_imports(package) == [
        "jobcache/store.py:1 (jobcache) imports plams_cli.runners.grid (runners)",
        "runners/probe.py:4 (runners) imports plams_cli.core (core)",
        "runners/probe.py:5 (runners) imports plams_cli.cli.main (cli)",
    ]


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60, env=python_env())
    return set(result.stdout.split())


@pytest.mark.parametrize(
    ("statement", "forbidden"),
    [
        ("import plams_cli.core", ("click", "rich", "h5py", "plams_cli.cli")),
        ("import plams_cli.workspace", ("plams_cli.core", "plams_cli.runners", "plams_cli.cli")),
        ("import plams_cli.jobcache", ("plams_cli.core", "plams_cli.runners", "plams_cli.cli")),
    ],
    ids=["core", "workspace", "jobcache"],
)
def test_a_fresh_import_loads_nothing_above(statement: str, forbidden: tuple[str, ...]) -> None:
    loaded = _loaded_after(statement)
    assert statement.split()[-1] in loaded
    assert sorted(m for m in loaded if m.split(".")[0] in forbidden or m.startswith(forbidden)) == []


def _functions(tree: ast.AST) -> Iterator[tuple[str, int]]:
    """(qualified name, lines) of every function, methods and nested functions too."""

    def visit(node: ast.AST, prefix: str) -> Iterator[tuple[str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                yield name, (child.end_lineno or child.lineno) - child.lineno + 1
                yield from visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                yield from visit(child, prefix + child.name + ".")
            else:
                yield from visit(child, prefix)

    yield from visit(tree, "")


def _too_long() -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    modules: dict[str, int] = {}
    functions: dict[tuple[str, str], int] = {}
    for path in _modules():
        rel = path.relative_to(PACKAGE).as_posix()
        source = path.read_text()
        lines = len(source.splitlines())
        if lines > MAX_MODULE_LINES:
            modules[rel] = lines
        for name, length in _functions(ast.parse(source)):
            if length > MAX_FUNCTION_LINES:
                functions[rel, name] = length
    return modules, functions


def test_modules_and_functions_stay_small() -> None:
    modules, functions = _too_long()
    assert {rel: n for rel, n in modules.items() if rel not in LONG_MODULES} == {}, \
        f"modules over {MAX_MODULE_LINES} lines"
    assert {key: n for key, n in functions.items() if key not in LONG_FUNCTIONS} == {}, \
        f"functions over {MAX_FUNCTION_LINES} lines"


def test_allow_lists_have_no_stale_entries() -> None:
    """An entry whose module was split (or function shortened) must leave the allow-list."""
    modules, functions = _too_long()
    assert sorted(LONG_MODULES - set(modules)) == []
    assert sorted(LONG_FUNCTIONS - set(functions)) == []
