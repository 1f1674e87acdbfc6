"""The import-layer contract of chaintrace (``[tool.chaintrace.layers]`` in pyproject.toml), checked over the AST
of every module: every ``import``/``from ... import`` wherever it stands (module level, inside functions, under
``TYPE_CHECKING``), relative imports resolved, and ``importlib.import_module("chaintrace....")`` /
``__import__`` calls with a constant name.

Rules (docs/development.md, "Layers"):

- each top-level package of ``chaintrace`` sits at one level of ``order`` (low -> high); the top-level modules
  (``errors.py``, ``progress.py``, ``sorting.py`` ...) sit at the lowest level, with ``model``;
- a package may import only packages at or below its own level (never one above it);
- no cycle between packages (nor between the lowest-level modules that share a level);
- the pairs in ``independent`` (sub-packages) never import each other;
- a package that is not in ``order`` is a violation (new packages are placed explicitly);
- ``chaintrace/__init__.py`` (the package face with lazy re-exports) and ``chaintrace/__main__.py`` are exempt.

Run as a script (``python tests/layercheck.py [SRC_ROOT]``) it prints the violations and exits 1 if any.
"""
from __future__ import annotations

import ast
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXEMPT = {"chaintrace", "chaintrace.__main__"}


@dataclass
class Contract:
    order: list[str]  # package names, low -> high
    independent: list[list[str]] = field(default_factory=list)  # groups of dotted module names

    @classmethod
    def from_pyproject(cls, path: Path = REPO / "pyproject.toml") -> "Contract":
        cfg = tomllib.loads(path.read_text(encoding="utf-8"))["tool"]["chaintrace"]["layers"]
        return cls(list(cfg["order"]), [list(g) for g in cfg.get("independent", [])])


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module name
    imported: str  # dotted module name (as written, resolved if relative)
    where: str  # file:line


def module_name(root: Path, path: Path) -> str:
    """Dotted name of `path` under the package directory `root` (``.../src/chaintrace``)."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(root: Path, path: Path) -> list[Import]:
    """Every import of a ``chaintrace`` module in one file."""
    mod = module_name(root, path)
    is_pkg = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    out: list[Import] = []

    def add(name: str, node: ast.AST) -> None:
        if name == root.name or name.startswith(root.name + "."):
            out.append(Import(mod, name, f"{path}:{getattr(node, 'lineno', 0)}"))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                add(a.name, node)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            add(target, node)
            for a in node.names:  # ``from chaintrace import graph`` imports the package graph
                sub = f"{target}.{a.name}"
                if _exists(root, sub):
                    add(sub, node)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name in ("import_module", "__import__"):
                add(node.args[0].value, node)
    return out


def _exists(root: Path, dotted: str) -> bool:
    rel = Path(*dotted.split(".")[1:])
    return (root / rel).is_dir() or (root / rel).with_suffix(".py").is_file()


def unit_of(root: Path, dotted: str) -> str | None:
    """The layer unit of a module: its top-level package, or the top-level module itself (None: the face)."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else None


def check(root: Path, contract: Contract) -> list[str]:
    """Violations of `contract` by the package at `root` (``.../src/chaintrace``), one message each."""
    root = Path(root)
    level = {name: i for i, name in enumerate(contract.order)}
    packages = sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    for m in sorted(p.stem for p in root.glob("*.py") if p.stem not in ("__init__", "__main__")):
        level.setdefault(m, 0)  # top-level modules: the lowest level, with the first package (model)
    problems = [f"package chaintrace.{p} is not in the layer order ([tool.chaintrace.layers] order in "
                f"pyproject.toml): place it there" for p in packages if p not in level]
    edges: dict[str, dict[str, Import]] = {}
    independent = [(g, set(g)) for g in contract.independent]
    for path in sorted(root.rglob("*.py")):
        mod = module_name(root, path)
        if mod in EXEMPT:
            continue
        src = unit_of(root, mod)
        for imp in imports_of(root, path):
            dst = unit_of(root, imp.imported)
            for _group, members in independent:
                a = next((m for m in members if mod == m or mod.startswith(m + ".")), None)
                b = next((m for m in members if imp.imported == m or imp.imported.startswith(m + ".")), None)
                if a and b and a != b:
                    problems.append(f"{imp.where}: {mod} imports {imp.imported}: {a} and {b} are independent")
            if dst is None or dst == src or src not in level or dst not in level:
                continue
            edges.setdefault(src, {}).setdefault(dst, imp)
            if level[dst] > level[src]:
                problems.append(f"{imp.where}: {mod} imports {imp.imported}: {src} (level {level[src]}) may not "
                                f"import {dst} (level {level[dst]}, above it)")
    for cycle in _cycles(edges):
        ties = "; ".join(f"{a}->{b} ({edges[a][b].where})" for a in cycle for b in cycle if b in edges.get(a, {}))
        problems.append(f"import cycle between {', '.join(sorted(cycle))}: {ties}")
    return problems


def _cycles(edges: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Strongly connected sets of more than one unit (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
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
                out.append(comp)

    for v in list(edges):
        if v not in index:
            visit(v)
    return out


if __name__ == "__main__":
    src_root = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "src" / "chaintrace"
    found = check(src_root, Contract.from_pyproject())
    print("\n".join(found) or "import layers: ok")
    sys.exit(1 if found else 0)
