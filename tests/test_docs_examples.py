"""Every concrete `chaintrace ...` example in the documentation pages runs as written, in page order.

Lines with placeholders (``KIND PATH...``, ``0xHACK_TX_HASH``, ``FILE``) or that need a node on the network
(``--url``) are skipped; the README (tests/test_readme.py), docs/clustering.md (tests/test_cluster_docs.py)
and docs/tracing.md (tests/test_trace_btc.py) are checked by their own tests.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

from tests.conftest import DATASETS, REPO

# page -> (commands run first to give the page's examples their data, files the page's examples read)
PAGES = {
    "intel.md": ([], {"addresses.txt": "0x098B716B8Aaf21512996dC57EB0615e2383E2f96\n"
                                       "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa\n"}),
    "simulator.md": ([], {}),
    "ethereum.md": ([], {}),
    "screening.md": ([], {}),
    "schema.md": (["chaintrace simulate btc --out sim --txs 5000 --seed 1 --ingest",
                   "chaintrace cluster build"], {}),
}
PLACEHOLDER = re.compile(r"\b(KIND|PATH\.\.\.|FILE|SEED|DATA|ADDRESS|TXID)\b|0x[A-Z_]{4,}|--url|\[--")


def _examples(page: str) -> list[str]:
    text = (REPO / "docs" / page).read_text()
    lines = []
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", text, re.S | re.M):
        for line in block.splitlines():
            line = line.strip().removeprefix("$ ").strip()
            if line.startswith("chaintrace ") and not PLACEHOLDER.search(line):
                lines.append(line)
    return lines


@pytest.mark.slow
@pytest.mark.parametrize("page", sorted(PAGES))
def test_page_examples_run(page, tmp_path):
    if not DATASETS.exists():
        pytest.skip(f"datasets not available at {DATASETS}")
    (tmp_path / "shared").symlink_to(DATASETS.parent)
    cwd = tmp_path / "main"
    cwd.mkdir()
    setup, files = PAGES[page]
    for name, content in files.items():
        (cwd / name).write_text(content)
    env = {**os.environ, "CHAINTRACE_DATA": str(tmp_path / "ws")}
    examples = _examples(page)
    assert examples, f"docs/{page} has no runnable examples"
    for line in setup + examples:
        argv = shlex.split(line, comments=True)
        p = subprocess.run([sys.executable, "-m", "chaintrace", *argv[1:]], cwd=cwd, env=env,
                           capture_output=True, text=True, timeout=900)
        assert p.returncode == 0, f"docs/{page}: {line}\n{p.stdout[-1500:]}\n{p.stderr[-2500:]}"
        assert "Traceback" not in p.stderr, line
