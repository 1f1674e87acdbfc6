"""Shared fixtures. Real data is read in place from ../shared/datasets (never copied into the repo);
a test whose data is missing is skipped with the reason."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from chaintrace.store.workspace import Workspace

REPO = Path(__file__).resolve().parent.parent
DATASETS = Path(os.environ.get("CHAINTRACE_DATASETS", REPO.parent / "shared" / "datasets"))


def dataset(*parts: str) -> Path:
    """Path of a file in ../shared/datasets, or skip the test saying which file is missing."""
    p = DATASETS.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"dataset file not available: {p} (set CHAINTRACE_DATASETS)")
    return p


@pytest.fixture
def ws(tmp_path) -> Workspace:
    """An empty workspace in a temporary directory."""
    return Workspace(tmp_path / "data")


# The intelligence registry is one directory shared by every workspace (default: under the user's data
# directory). Tests never touch the user's: the whole session points at a temporary directory, and each
# test at its own.
os.environ["CHAINTRACE_REGISTRY"] = tempfile.mkdtemp(prefix="chaintrace-registry-")


@pytest.fixture(autouse=True)
def _own_registry(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINTRACE_REGISTRY", str(tmp_path / "registry"))


def doc_commands(page: str, heading: str) -> list[list[str]]:
    """The `chaintrace ...` lines (arguments after `chaintrace`, a trailing `# ...` comment dropped) of the first code block after the heading
    matching the regex `heading` in docs/`page`."""
    import re
    import shlex

    block = re.search(heading + r".*?```\n(.*?)```", (REPO / "docs" / page).read_text(), re.S).group(1)
    return [shlex.split(line, comments=True)[1:] for line in block.splitlines() if line.startswith("chaintrace ")]


def run_commands(cmds: list[list[str]]) -> list[str]:
    """Run each command in-process with the real CLI; each must exit 0. Returns their outputs."""
    from click.testing import CliRunner

    from chaintrace.cli import main

    outs = []
    for c in cmds:
        r = CliRunner().invoke(main, c)
        assert r.exit_code == 0, (c, r.output)
        outs.append(r.output)
    return outs


def peel_chain_trace(root: Path) -> dict:
    """A simulated peel-chain hack (1,500 transactions, seed 7) in `root`/sim, ingested into `root`/data, and
    the fifo trace of its first stolen output with the simulator's tags: ``{ws, report, out, seed}``."""
    from chaintrace.chains.btc import ingest_block_files
    from chaintrace.sim import simulate_btc
    from chaintrace.trace import read_seed_file, trace

    out = root / "sim"
    simulate_btc(out, txs=1500, seed=7, scenario="peel-chain")
    ws = Workspace(root / "data")
    ingest_block_files(ws, [out], pow_rules="target-only")
    seeds = read_seed_file(out / "stolen.txt")[:1]
    r = trace(ws, seeds, policy="fifo", min_value=0, tags=[out / "tags.yaml"])
    return {"ws": ws, "report": r, "out": out, "seed": seeds[0]}
