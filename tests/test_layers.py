"""The import-layer contract ([tool.chaintrace.layers] in pyproject.toml; docs/development.md "Layers"):
the source obeys it, and the checker catches each kind of planted violation."""
from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from tests.layercheck import REPO, Contract, check

SRC = REPO / "src" / "chaintrace"
CONTRACT = Contract.from_pyproject()


def test_source_obeys_the_layers():
    assert check(SRC, CONTRACT) == []


def test_contract_places_every_planned_package():
    order = CONTRACT.order
    assert order[0] == "model" and order[-1] == "cli"
    planned = ["trace", "sim", "screen", "share", "monitor", "spark", "report", "intake", "api", "app", "cli"]
    assert [p for p in order if p in planned] == planned
    existing = sorted(p.name for p in SRC.iterdir() if (p / "__init__.py").exists())
    assert set(existing) <= set(order)


def _tree(root: Path, files: dict[str, str]) -> Path:
    """A fake ``chaintrace`` package: every package in `files` gets an ``__init__.py``."""
    pkg = root / "chaintrace"
    for rel, text in {"__init__.py": "", **files}.items():
        p = pkg / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        for d in [p.parent, *p.parent.parents]:
            if d == pkg.parent:
                break
            (d / "__init__.py").touch()
        p.write_text(textwrap.dedent(text))
    return pkg


CLEAN = {
    "errors.py": "class UserError(Exception): ...\n",
    "sorting.py": "from chaintrace.errors import UserError\n",
    "model/amounts.py": "from chaintrace import errors\n",
    "store/segments.py": "from chaintrace.model import amounts\nfrom chaintrace.errors import UserError\n",
    "chains/btc/ingest.py": "from chaintrace.store import segments\nfrom . import parse\n",
    "chains/btc/parse.py": "",
    "chains/eth/ingest.py": "from chaintrace.store.segments import x\n",
    "graph/btc.py": "from chaintrace.chains.btc import ingest\nfrom ..store import segments\n",
    "trace/sinks.py": "def f():\n    from chaintrace.graph.btc import g\n",
    # packages being added by others: placed in the order already
    "screen/batch.py": "from chaintrace.trace import sinks\n",
    "api/app.py": "from chaintrace.screen.batch import s\nfrom chaintrace.store import segments\n",
    "app/demo.py": "from chaintrace.api.app import create_app\n",
    "cli/__init__.py": "from chaintrace.app import demo\n",
    "__main__.py": "from chaintrace.cli import main\n",
}


def test_clean_tree_passes(tmp_path):
    assert check(_tree(tmp_path, CLEAN), CONTRACT) == []


PLANTED = {
    "function-level upward import": ("store/query.py", "def stats():\n    from chaintrace.graph.btc import g\n",
                                     "store (level 1) may not import graph"),
    "relative upward import": ("store/query.py", "from ..trace import sinks\n", "may not import trace"),
    "from chaintrace import <package>": ("chains/btc/rpc.py", "from chaintrace import graph\n",
                                         "chains (level 2) may not import graph"),
    "TYPE_CHECKING import": ("model/tags.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                             "    from chaintrace.store.segments import ChainStore\n", "model (level 0) may not"),
    "importlib.import_module": ("graph/more.py", "import importlib\nimportlib.import_module('chaintrace.trace.sinks')\n",
                                "graph (level 5) may not import trace"),
    "lowest-level modules in a cycle": ("errors.py", "from chaintrace.sorting import x\n",
                                        "import cycle between errors, sorting"),
    "independent sub-packages": ("chains/eth/query.py", "from chaintrace.chains.btc.parse import merkle_root\n",
                                 "chaintrace.chains.eth and chaintrace.chains.btc are independent"),
    "package missing from the order": ("newthing/core.py", "", "chaintrace.newthing is not in the layer order"),
    "import of the top layer": ("app/evaluate.py", "import chaintrace.cli\n", "app (level 15) may not import cli"),
}


@pytest.mark.parametrize("case", sorted(PLANTED))
def test_planted_violation_is_caught(tmp_path, case):
    rel, text, expected = PLANTED[case]
    files = dict(CLEAN)
    files[rel] = files.get(rel, "") + text
    found = check(_tree(tmp_path, files), CONTRACT)
    assert any(expected in p for p in found), found
    if case != "package missing from the order":
        assert any(f"chaintrace/{rel}:" in p or "cycle" in p for p in found), found


def test_planted_violation_in_the_real_source_is_caught(tmp_path):
    """A copy of the real package with one function-level upward import: exactly that import is reported."""
    pkg = tmp_path / "chaintrace"
    shutil.copytree(SRC, pkg, ignore=shutil.ignore_patterns("__pycache__", "data"))
    q = pkg / "store" / "query.py"
    q.write_text(q.read_text() + "\n\ndef _planted():\n    from chaintrace.trace.report import TraceReport\n")
    found = check(pkg, CONTRACT)
    assert len([p for p in found if "may not import" in p]) == 1, found
    assert "store/query.py" in found[0] and "store (level 1) may not import trace" in found[0]
    # and it closes a cycle (trace imports store)
    assert any(p.startswith("import cycle between") and "store" in p and "trace" in p for p in found), found
