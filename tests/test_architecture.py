"""The package's shape, read from its source with `ast`: imports run one way (no cycle among
maelab's modules, no maelab import hidden inside a function), modules stay short, every
third-party import is a declared dependency, and no module shadows the standard library.

The checkers take any package folder, so each is also tested on a small fake package with
known violations.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "maelab"
PYPROJECT = ROOT / "pyproject.toml"

MAX_LINES = 400
# Modules allowed past MAX_LINES, each with the reason it stays one module:
# {"maelab/x.py": "why"}. An entry for a module that is short again fails the test.
LONG_MODULES: dict[str, str] = {}
# Where a function may import maelab: the CLI's handlers import their subcommand's code
# lazily so that `maelab --help` stays fast.
LAZY_IMPORTS_ALLOWED = {f"cli/{p.name}" for p in (PACKAGE / "cli").glob("*.py")}
# import name -> distribution name, where they differ (the rest: the same, PEP 503-normalised)
DISTRIBUTION_OF = {
    "yaml": "pyyaml",
    "sklearn": "scikit-learn",
    "PIL": "pillow",
    "skimage": "scikit-image",
    "cv2": "opencv-python",
}


# ---------------------------------------------------------------------------- reading imports
@dataclass(frozen=True)
class Import:
    """One import statement's target, as seen from the importing module."""

    importer: str  # dotted module name
    path: Path
    line: int
    target: str  # dotted module name (internal) or top-level name (third-party)
    internal: bool  # a module of the package itself
    in_function: bool
    guarded: bool  # may fail without breaking the module: in a function, try/except
    # ImportError, or `if TYPE_CHECKING:`


def modules_of(package: Path) -> dict[str, Path]:
    """Dotted name -> file of every module of `package` (a package is its __init__.py)."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str:
    """The longest prefix of `name` that is a module of the package."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in modules:
            return ".".join(parts[:i])
    return parts[0]


def _catches_import_error(node: ast.Try) -> bool:
    for handler in node.handlers:
        names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        for n in names:
            if isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError"):
                return True
    return False


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


class _ImportVisitor(ast.NodeVisitor):
    def __init__(self, module: str, path: Path, modules: dict[str, Path], root: str) -> None:
        self.module, self.path, self.modules, self.root = module, path, modules, root
        self.is_package = path.name == "__init__.py"
        self.function_depth = 0
        self.guard_depth = 0
        self.found: list[Import] = []

    def _add(self, node: ast.stmt, name: str, internal: bool) -> None:
        target = _resolve(name, self.modules) if internal else name.split(".")[0]
        in_function = self.function_depth > 0
        guarded = in_function or self.guard_depth > 0
        self.found.append(
            Import(self.module, self.path, node.lineno, target, internal, in_function, guarded)
        )

    def _function(self, node: ast.AST) -> None:
        self.function_depth += 1
        self.generic_visit(node)
        self.function_depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_Try(self, node: ast.Try) -> None:
        guard = _catches_import_error(node)
        self.guard_depth += guard
        for stmt in node.body:
            self.visit(stmt)
        self.guard_depth -= guard
        for rest in (*node.handlers, *node.orelse, *node.finalbody):
            self.visit(rest)

    def visit_If(self, node: ast.If) -> None:
        guard = _is_type_checking(node)
        self.guard_depth += guard
        for stmt in node.body:
            self.visit(stmt)
        self.guard_depth -= guard
        for stmt in node.orelse:
            self.visit(stmt)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            internal = alias.name.split(".")[0] == self.root
            self._add(node, alias.name, internal)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:  # relative: always inside the package
            package = self.module if self.is_package else self.module.rpartition(".")[0]
            base_parts = package.split(".")
            base_parts = base_parts[: len(base_parts) - (node.level - 1)]
            base = ".".join(base_parts + ([node.module] if node.module else []))
        else:
            base = node.module or ""
            if base.split(".")[0] != self.root:
                self._add(node, base, internal=False)
                return
        for alias in node.names:
            # `from pkg.x import y`: the module pkg.x.y when y is a submodule, else pkg.x
            sub = f"{base}.{alias.name}"
            self._add(node, sub if sub in self.modules else base, internal=True)


def imports_of(package: Path) -> list[Import]:
    """Every import statement in `package`, at module level and inside functions."""
    modules = modules_of(package)
    found: list[Import] = []
    for module, path in modules.items():
        visitor = _ImportVisitor(module, path, modules, package.name)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        found += visitor.found
    return list(dict.fromkeys(found))  # `from m import a, b` of one module: one import


# The package's layers, lowest first: a module may import its own layer and the layers below,
# never one above. A top-level module or subpackage of maelab must be named here.
LAYERS: tuple[frozenset[str], ...] = tuple(
    frozenset(names.split())
    for names in (
        "errors config run_folder run_records metric_names stats verdicts_schema verdict_records verdicts metrics "
        "plotting collectives",
        "data",
        "recipes",
        "masking",
        "models",
        "objectives",
        "engine",
        "theory",  # analysis of the worlds: neither models/ nor engine/ may import it
        "evaluation",
        "export",  # a checkpoint as a Hugging Face / timm folder
        "probes",
        "report",
        "experiments",
        "bench",
        "cli",
        "__main__",
    )
)


# ---------------------------------------------------------------------------- checkers
def layer_of(module: str, layers: tuple[frozenset[str], ...] = LAYERS) -> int | None:
    """The index of a dotted module's layer (its first part below the package), or None."""
    parts = module.split(".")
    unit = parts[1] if len(parts) > 1 else "__init__"
    if unit == "__init__":
        return -1  # the package's own __init__ may re-export anything
    return next((i for i, names in enumerate(layers) if unit in names), None)


def upward_imports(
    package: Path, layers: tuple[frozenset[str], ...] = LAYERS
) -> tuple[list[Import], list[str]]:
    """Imports of a layer above the importer's, and the modules no layer names."""
    unknown = sorted(m for m in modules_of(package) if layer_of(m, layers) is None)
    upward = []
    for imp in imports_of(package):
        if not imp.internal:
            continue
        low, high = layer_of(imp.importer, layers), layer_of(imp.target, layers)
        if low is None or high is None or low == -1:
            continue
        if high > low:
            upward.append(imp)
    return upward, unknown


def imports_between(package: Path, importer: str, target: str) -> list[Import]:
    """Imports from modules under the dotted prefix `importer` of modules under `target`."""

    def under(module: str, prefix: str) -> bool:
        return module == prefix or module.startswith(prefix + ".")

    return [
        i
        for i in imports_of(package)
        if i.internal and under(i.importer, importer) and under(i.target, target)
    ]


class _Constructions(ast.NodeVisitor):
    """Calls that build a `record`: `record(...)` by name, or `cls(...)` in its own methods."""

    def __init__(self, module: str, record: str) -> None:
        self.module, self.record = module, record
        self.scope: list[str] = []
        self.found: list[tuple[str, str]] = []

    def _scoped(self, node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_ClassDef = visit_FunctionDef = visit_AsyncFunctionDef = _scoped

    def visit_Call(self, node: ast.Call) -> None:
        f = node.func
        name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
        own = name == "cls" and self.scope[:1] == [self.record]
        if name == self.record or own:
            self.found.append((self.module, ".".join(self.scope) or "<module>"))
        self.generic_visit(node)


def record_constructions(package: Path, record: str) -> list[tuple[str, str]]:
    """(module, function) of every place in `package` that builds a `record`."""
    found: list[tuple[str, str]] = []
    for module, path in modules_of(package).items():
        visitor = _Constructions(module, record)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        found += visitor.found
    return sorted(set(found))


def classes_named(package: Path, name: str) -> list[str]:
    """Dotted paths of the classes called `name` in `package`."""
    out = []
    for module, path in modules_of(package).items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        out += [f"{module}.{n.name}" for n in ast.walk(tree)
                if isinstance(n, ast.ClassDef) and n.name == name]  # fmt: skip
    return sorted(out)


def import_cycles(package: Path) -> list[list[Import]]:
    """One cycle (as its chain of imports) per group of mutually importing modules."""
    edges: dict[str, dict[str, Import]] = {m: {} for m in modules_of(package)}
    for imp in imports_of(package):
        if imp.internal and imp.target != imp.importer and imp.target in edges:
            edges[imp.importer].setdefault(imp.target, imp)
    cycles = []
    for group in _strongly_connected(edges):
        if len(group) > 1:
            cycles.append(_cycle_in(min(group), group, edges))
    return sorted(cycles, key=lambda c: c[0].importer)


def _strongly_connected(edges: dict[str, dict[str, Import]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative (no recursion limit on long chains)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                groups.append(group)
    return groups


def _cycle_in(start: str, group: set[str], edges: dict[str, dict[str, Import]]) -> list[Import]:
    """The shortest chain of imports from `start` back to itself inside `group` (BFS)."""
    previous: dict[str, Import] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for target, imp in sorted(edges[node].items()):
                if target not in group or target in previous:
                    continue
                previous[target] = imp
                if target == start:
                    chain = [imp]
                    while chain[0].importer != start:
                        chain.insert(0, previous[chain[0].importer])
                    return chain
                nxt.append(target)
        frontier = nxt
    raise AssertionError(f"no cycle through {start} in {sorted(group)}")


def format_cycle(chain: list[Import], root: Path) -> str:
    steps = [f"{i.importer} ({i.path.relative_to(root)}:{i.line})" for i in chain]
    return " -> ".join([*steps, chain[0].importer])


def function_level_imports(package: Path, allowed: set[str]) -> list[Import]:
    """Imports of the package placed inside a function, outside the `allowed` files
    (paths relative to the package folder)."""
    return [
        i
        for i in imports_of(package)
        if i.internal and i.in_function and i.path.relative_to(package).as_posix() not in allowed
    ]


def long_modules(package: Path, limit: int, allowed: dict[str, str]) -> dict[str, int]:
    """Line counts of modules past `limit` lines that `allowed` (paths relative to the
    package's parent) does not name."""
    out = {}
    for path in modules_of(package).values():
        key = path.relative_to(package.parent).as_posix()
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > limit and key not in allowed:
            out[key] = n
    return out


def normalise(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def declared(pyproject: Path) -> tuple[set[str], set[str]]:
    """(required, optional) distribution names, normalised."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]

    def names(reqs: list[str]) -> set[str]:
        return {normalise(re.split(r"[\s\[<>=!~;@(]", r.strip(), maxsplit=1)[0]) for r in reqs}

    optional = set()
    for group in project.get("optional-dependencies", {}).values():
        optional |= names(group)
    return names(project.get("dependencies", [])), optional


def undeclared_imports(package: Path, pyproject: Path) -> list[str]:
    """Third-party imports without a declared distribution: a module-level import needs a
    required dependency; a guarded one (in a function, try/except ImportError, TYPE_CHECKING)
    may name an optional one."""
    required, optional = declared(pyproject)
    problems = []
    for imp in imports_of(package):
        name = imp.target
        if imp.internal or name in sys.stdlib_module_names:
            continue
        dist = normalise(DISTRIBUTION_OF.get(name, name))
        ok = dist in required or (imp.guarded and dist in optional)
        if not ok:
            where = f"{imp.path.relative_to(package.parent)}:{imp.line}"
            need = "a dependency" if not imp.guarded else "a dependency or optional dependency"
            problems.append(f"{where}: import {name} (distribution {dist}) is not {need}")
    return problems


def stdlib_named_modules(package: Path) -> list[str]:
    """Modules and subpackages whose own name is a standard-library module's."""
    out = []
    for path in sorted(package.rglob("*.py")):
        name = path.parent.name if path.name == "__init__.py" else path.stem
        if not name.startswith("__") and name in sys.stdlib_module_names:
            out.append(path.relative_to(package.parent).as_posix())
    return out


# ---------------------------------------------------------------------------- maelab
def test_no_import_cycle() -> None:
    cycles = import_cycles(PACKAGE)
    if cycles:
        pytest.fail(
            "import cycles among maelab's modules:\n"
            + "\n".join(format_cycle(c, ROOT) for c in cycles)
        )


def test_no_module_imports_a_layer_above_it() -> None:
    upward, unknown = upward_imports(PACKAGE)
    assert not unknown, f"modules in no layer (add them to LAYERS): {unknown}"
    assert not upward, "imports that run up the layers:\n" + "\n".join(
        f"{i.path.relative_to(ROOT)}:{i.line}: {i.importer} -> {i.target}" for i in upward
    )


def test_checker_finds_an_upward_import(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "low").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "low" / "__init__.py").write_text("")
    (pkg / "low" / "a.py").write_text("def f():\n    from pkg.high import b\n")
    (pkg / "high.py").write_text("from pkg.low import a\n")
    (pkg / "stray.py").write_text("")
    layers = (frozenset({"low"}), frozenset({"high"}))
    upward, unknown = upward_imports(pkg, layers)
    assert [(i.importer, i.target, i.in_function) for i in upward] == [
        ("pkg.low.a", "pkg.high", True)
    ]
    assert unknown == ["pkg.stray"]


def test_only_the_decider_makes_a_verdict() -> None:
    """Every verdict in maelab is a VerdictRecord made by `maelab.verdicts.decide_table`; the
    only other construction reads a stored row back (`VerdictRecord.from_json`)."""
    assert record_constructions(PACKAGE, "VerdictRecord") == [
        ("maelab.verdicts", "VerdictRecord.from_json"),
        ("maelab.verdicts", "decide_table"),
    ]
    assert classes_named(PACKAGE, "Verdict") == []  # the report's own verdict type is gone
    assert "maelab.report.claims" not in modules_of(PACKAGE)


def test_the_report_shows_verdicts_without_the_probes() -> None:
    found = imports_between(PACKAGE, "maelab.report", "maelab.probes")
    assert not found, "the report imports the probes:\n" + "\n".join(
        f"{i.path.relative_to(ROOT)}:{i.line}: {i.importer} -> {i.target}" for i in found
    )


def test_checker_finds_record_constructions_and_imports_between(tmp_path: Path) -> None:
    pkg = _package(tmp_path, {
        "__init__.py": "",
        "rec.py": (
            "class Rec:\n    @classmethod\n    def load(cls, x):\n        return cls(x)\n\n\n"
            "def decide(x):\n    return Rec(x)\n"
        ),
        "report/__init__.py": "",
        "report/page.py": "from fakepkg import rec\nfrom fakepkg.probes import p\n\n\n"
                          "class Other:\n    def make(cls):\n        return cls()\n\n\n"
                          "def show(x):\n    return rec.Rec(x)\n",
        "probes/__init__.py": "",
        "probes/p.py": "class Verdict: ...\n",
    })  # fmt: skip
    assert record_constructions(pkg, "Rec") == [
        ("fakepkg.rec", "Rec.load"), ("fakepkg.rec", "decide"), ("fakepkg.report.page", "show"),
    ]  # fmt: skip
    found = imports_between(pkg, "fakepkg.report", "fakepkg.probes")
    assert [(i.importer, i.target) for i in found] == [("fakepkg.report.page", "fakepkg.probes.p")]
    assert imports_between(pkg, "fakepkg.probes", "fakepkg.report") == []
    assert classes_named(pkg, "Verdict") == ["fakepkg.probes.p.Verdict"]


def test_no_maelab_import_inside_a_function() -> None:
    found = function_level_imports(PACKAGE, LAZY_IMPORTS_ALLOWED)
    if found:
        pytest.fail(
            "maelab imported inside a function (a hidden cycle or an upward import):\n"
            + "\n".join(f"{i.path.relative_to(ROOT)}:{i.line}: {i.target}" for i in found)
        )


def test_modules_stay_short() -> None:
    long = long_modules(PACKAGE, MAX_LINES, LONG_MODULES)
    if long:
        pytest.fail(
            f"modules over {MAX_LINES} lines (split them, or allow-list them with a reason):\n"
            + "\n".join(f"{k}: {n} lines" for k, n in sorted(long.items()))
        )
    stale = set(LONG_MODULES) - set(long_modules(PACKAGE, MAX_LINES, {}))
    assert not stale, f"allow-listed as long but not (or no longer there): {sorted(stale)}"


def test_every_third_party_import_is_declared() -> None:
    problems = undeclared_imports(PACKAGE, PYPROJECT)
    if problems:
        pytest.fail("undeclared imports (pyproject.toml):\n" + "\n".join(problems))


def test_no_module_named_after_the_standard_library() -> None:
    found = stdlib_named_modules(PACKAGE)
    if found:
        pytest.fail(f"modules named after a standard-library module: {found}")


# ---------------------------------------------------------------------------- the checkers
def _package(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / "fakepkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "fakepkg"


def test_checker_finds_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    pkg = _package(tmp_path, {
        "__init__.py": "",
        "a.py": "from fakepkg.b import g\n",
        "b.py": "import os\n\n\ndef g():\n    from fakepkg.sub import c\n    return c\n",
        "sub/__init__.py": "",
        "sub/c.py": "from .. import a\n",  # relative, two levels: fakepkg.a
        "d.py": "import fakepkg.a\n",  # imports into the cycle, not part of it
    })  # fmt: skip
    cycles = import_cycles(pkg)
    assert [format_cycle(c, tmp_path) for c in cycles] == [
        "fakepkg.a (fakepkg/a.py:1) -> fakepkg.b (fakepkg/b.py:5) -> "
        "fakepkg.sub.c (fakepkg/sub/c.py:1) -> fakepkg.a"
    ]
    found = function_level_imports(pkg, allowed=set())
    assert [(i.importer, i.line, i.target) for i in found] == [("fakepkg.b", 5, "fakepkg.sub.c")]
    assert function_level_imports(pkg, allowed={"b.py"}) == []


def test_checker_resolves_submodules_packages_and_relative_imports(tmp_path: Path) -> None:
    pkg = _package(tmp_path, {
        "__init__.py": "",
        "models/__init__.py": "from .mae import Model\nfrom . import presets\n",
        "models/mae.py": "class Model: ...\n",
        "models/presets.py": "from fakepkg.models.mae import Model\n",
        "engine.py": "from fakepkg.models import Model, presets\nimport fakepkg.models.mae as m\n",
    })  # fmt: skip
    edges = {(i.importer, i.target) for i in imports_of(pkg) if i.internal}
    assert edges == {
        ("fakepkg.models", "fakepkg.models.mae"),
        ("fakepkg.models", "fakepkg.models.presets"),
        ("fakepkg.models.presets", "fakepkg.models.mae"),
        ("fakepkg.engine", "fakepkg.models"),  # Model: a name of the package's __init__
        ("fakepkg.engine", "fakepkg.models.presets"),  # a submodule
        ("fakepkg.engine", "fakepkg.models.mae"),
    }
    assert import_cycles(pkg) == []  # a package importing its own modules is no cycle


def test_checker_finds_a_two_module_cycle_and_a_package_init_cycle(tmp_path: Path) -> None:
    pkg = _package(tmp_path, {
        "__init__.py": "",
        "x.py": "import fakepkg.y\n",
        "y.py": "from fakepkg import x\n",
        "p/__init__.py": "from fakepkg.p.q import f\n",
        "p/q.py": "from fakepkg.r import h\n\ndef f(): ...\n",
        "r.py": "from fakepkg.p import f as g\n\ndef h(): ...\n",
    })  # fmt: skip
    assert [format_cycle(c, tmp_path) for c in import_cycles(pkg)] == [
        "fakepkg.p (fakepkg/p/__init__.py:1) -> fakepkg.p.q (fakepkg/p/q.py:1) -> "
        "fakepkg.r (fakepkg/r.py:1) -> fakepkg.p",
        "fakepkg.x (fakepkg/x.py:1) -> fakepkg.y (fakepkg/y.py:1) -> fakepkg.x",
    ]


def test_checker_line_limit_and_allow_list(tmp_path: Path) -> None:
    pkg = _package(tmp_path, {
        "__init__.py": "",
        "long.py": "x = 1\n" * 11,
        "edge.py": "x = 1\n" * 10,
        "sub/__init__.py": "x = 1\n" * 12,
    })  # fmt: skip
    assert long_modules(pkg, 10, {}) == {"fakepkg/long.py": 11, "fakepkg/sub/__init__.py": 12}
    assert long_modules(pkg, 10, {"fakepkg/long.py": "a reason"}) == {"fakepkg/sub/__init__.py": 12}


def test_checker_third_party_declarations(tmp_path: Path) -> None:
    pkg = _package(tmp_path, {
        "__init__.py": "",
        "a.py": (
            "import json\nimport yaml\nimport numpy as np\nfrom sklearn.linear_model import Ridge\n"
            "from PIL import Image\nimport rich.console\nfrom . import b\nimport fakepkg.b\n"
            "try:\n    import transformers\nexcept ImportError:\n    transformers = None\n"
        ),
        "b.py": "def f():\n    import transformers\n    import tqdm\n",
        "c.py": "import transformers\n",  # optional, but needed at import time
        "d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import transformers\n",
    })  # fmt: skip
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "fakepkg"\ndependencies = ["PyYAML>=6", "numpy", '
        '"scikit_learn ; python_version >= \'3.10\'", "Pillow[webp]>=10"]\n'
        '[project.optional-dependencies]\ntest = ["transformers>=4"]\n'
    )
    problems = undeclared_imports(pkg, pyproject)
    assert [p.split(":")[0:2] for p in problems] == [
        ["fakepkg/a.py", "6"],  # rich
        ["fakepkg/b.py", "3"],  # tqdm, even lazily
        ["fakepkg/c.py", "1"],  # transformers at module level
    ]
    assert "distribution rich" in problems[0]


def test_checker_stdlib_names(tmp_path: Path) -> None:
    pkg = _package(tmp_path, {
        "__init__.py": "",
        "__main__.py": "",
        "engine/__init__.py": "",
        "engine/logging.py": "",
        "engine/loop.py": "",
        "statistics/__init__.py": "",
    })  # fmt: skip
    assert stdlib_named_modules(pkg) == [
        "fakepkg/engine/logging.py",
        "fakepkg/statistics/__init__.py",
    ]


# ---------------------------------------------------------------------------- one feature path
# `encoder_tokens` is the one function that runs an encoder for evaluation; a mask is a value
# made by `maelab.masking`; every probe reads the checkpoint's mask ratio, never a literal.
FEATURES_MODULE = "evaluation/features.py"  # where Features and encoder_tokens live
EVALUATING = ("evaluation", "probes", "experiments", "report", "cli")  # folders that read encoders
ENCODER_CALLS = ("forward_encoder", "encode")  # the model's methods that run its encoder
RATIO_NAME = re.compile(r"(^|_)ratio$", re.IGNORECASE)


def _trees(package: Path, folders: tuple[str, ...] = ()) -> dict[str, ast.Module]:
    """Parsed modules of `package` (paths relative to it), optionally only under `folders`."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        if not folders or rel.split("/")[0] in folders:
            out[rel] = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return out


def class_definitions(package: Path, name: str) -> list[str]:
    """Modules (relative paths) that define a class called `name`."""
    return [rel for rel, tree in _trees(package).items()
            if any(isinstance(n, ast.ClassDef) and n.name == name for n in ast.walk(tree))]  # fmt: skip


def method_calls(package: Path, methods: tuple[str, ...], folders: tuple[str, ...]) -> list[str]:
    """`module:line method` of every call `x.method(arg, ...)` with at least one argument (a
    bare `s.encode()` of a string is not an encoder) under `folders`."""
    found = []
    for rel, tree in _trees(package, folders).items():
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in methods and (node.args or node.keywords)):  # fmt: skip
                found.append(f"{rel}:{node.lineno} {node.func.attr}")
    return found


def constructor_calls(package: Path, name: str) -> list[str]:
    """`module:line` of every call `name(...)` or `x.name(...)`."""
    found = []
    for rel, tree in _trees(package).items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                called = f.id if isinstance(f, ast.Name) else getattr(f, "attr", None)
                if called == name:
                    found.append(f"{rel}:{node.lineno}")
    return found


def _number(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def literal_ratios(package: Path, folders: tuple[str, ...]) -> list[str]:
    """Mask ratios written as numbers under `folders`: a parameter `*ratio` with a numeric
    default, a keyword `*ratio=<number>` in a call, or a module constant `*RATIO = <number>`."""
    found = []
    for rel, tree in _trees(package, folders).items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                positional = [*a.posonlyargs, *a.args]
                pairs = list(
                    zip(positional[len(positional) - len(a.defaults) :], a.defaults, strict=True)
                )
                pairs += [
                    (arg, d)
                    for arg, d in zip(a.kwonlyargs, a.kw_defaults, strict=True)
                    if d is not None
                ]
                found += [f"{rel}:{arg.lineno} {node.name}({arg.arg}=...)" for arg, d in pairs
                          if RATIO_NAME.search(arg.arg) and _number(d)]  # fmt: skip
            elif isinstance(node, ast.Call):
                found += [f"{rel}:{node.lineno} {kw.arg}=..." for kw in node.keywords
                          if kw.arg and RATIO_NAME.search(kw.arg) and _number(kw.value)]  # fmt: skip
            elif isinstance(node, ast.Assign) and _number(node.value):
                found += [f"{rel}:{node.lineno} {t.id} = ..." for t in node.targets
                          if isinstance(t, ast.Name) and RATIO_NAME.search(t.id)]  # fmt: skip
    return found


def test_one_features_class() -> None:
    assert class_definitions(PACKAGE, "Features") == [FEATURES_MODULE]


def test_evaluation_never_imports_the_probes() -> None:
    found = [f"{i.path.relative_to(ROOT)}:{i.line} -> {i.target}" for i in imports_of(PACKAGE)
             if i.importer.startswith("maelab.evaluation") and i.target.startswith("maelab.probes")]  # fmt: skip
    assert not found, "evaluation/ sits below probes/:\n" + "\n".join(found)


def test_the_encoder_runs_for_evaluation_in_one_place() -> None:
    calls = method_calls(PACKAGE, ENCODER_CALLS, EVALUATING)
    outside = [c for c in calls if not c.startswith(FEATURES_MODULE)]
    assert not outside, "call maelab.evaluation.features.encoder_tokens instead:\n" + "\n".join(
        outside
    )
    assert calls, "encoder_tokens itself calls the encoder: the checker lost track of it"


def test_masks_are_made_by_masking_only() -> None:
    assert {c.split(":")[0] for c in constructor_calls(PACKAGE, "Mask")} == {"masking.py"}


def test_no_literal_mask_ratio_in_the_probes() -> None:
    found = literal_ratios(PACKAGE, ("probes",))
    assert not found, "probes take the checkpoint's ratio (config.MASK_RATIO by default):\n" + (
        "\n".join(found)
    )


def test_checkers_of_the_feature_path(tmp_path: Path) -> None:
    pkg = _package(tmp_path, {
        "__init__.py": "",
        "evaluation/features.py": "class Features: ...\n\ndef tokens(m, x):\n    return m.encode(x)\n",
        "probes/a.py": (
            "RATIO = 0.5\nMAX_RATIO = CONFIG_RATIO\n\n"
            "def probe(model, x, mask_ratio=0.75, *, knockout_ratio=None, seed=0):\n"
            "    model.forward_encoder(x, 0.75, mask=Mask(1))\n"
            "    return draw(ratio=0.9, other=0.9), 'abc'.encode()\n"
        ),
        "probes/b.py": "class Features: ...\n",
    })  # fmt: skip
    assert class_definitions(pkg, "Features") == ["evaluation/features.py", "probes/b.py"]
    assert method_calls(pkg, ENCODER_CALLS, EVALUATING) == [
        "evaluation/features.py:4 encode",
        "probes/a.py:5 forward_encoder",
    ]
    assert constructor_calls(pkg, "Mask") == ["probes/a.py:5"]
    assert sorted(literal_ratios(pkg, ("probes",))) == [
        "probes/a.py:1 RATIO = ...",
        "probes/a.py:4 probe(mask_ratio=...)",
        "probes/a.py:6 ratio=...",
    ]
