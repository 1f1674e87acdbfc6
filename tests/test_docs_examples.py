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
    "reports.md": ([], {}),
    "schema.md": (["chaintrace simulate btc --out sim --txs 5000 --seed 1 --ingest",
                   "chaintrace cluster build"], {}),
}
# key output of examples, per page: (a fragment of the command line, texts its stdout must contain). A
# documented example is checked for what it shows (a txid, an amount, a label), not only for exit code 0.
EXPECT: dict[str, list[tuple[str, list[str]]]] = {
    "ethereum.md": [
        ("ingest eth-etl ../shared/datasets/eth-raw-blocks", ["298", "1102"]),
        ("ingest eth-transfers", ["410", "311"]),
        ("chaintrace stats", ["17173050 0x5699ffb9477f70ec736463b144614356eb051936da75fcccec73d648f2e91de4"]),
        ("show tx 0xec7cc4df", ["17173049 (0xaa5ab9bb22d8020d438496a7edb4eff508b1c5128b0dc01fdecf57f96aac1bb3)",
                                "7.4 ETH", "0.009618513515911864 ETH"]),
        ("show address 0x6b75d8af", ['"tx_count": 4', "0xd801359cc74a7cf535c43f0df29eff82135bc38c282e1d4882eac7f95513394f"]),
    ],
    "schema.md": [
        ("ORDER BY fee DESC LIMIT 3", ["7eda6bf71d9b887634e41c97fb9c63065eeaf407f387b6b7c49bdb6f98a50828", "416082"]),
        ("FROM btc.blocks ORDER BY height DESC LIMIT 1", [
            "235,03f36acb9d6d23ec9082608a837a115559e2bff1b62374e25d7801d7b476ca97"]),
        ("max(cluster_size)", ["100"]),
    ],
}

EXPECT["reports.md"] = [
    ("--out ronin.json", ["8,564.846182267597648050", "unmoved as of synthetic block 409"]),
    ("report --trace ronin.json --lang ar", ['"lang": "ar"']),
    ("case add ronin-2022 --trace ronin.json", ["sha256 ", "ronin-2022/traces/"]),
    ("case show ronin-2022", ["seed address eth 0x098b716b8aaf21512996dc57eb0615e2383e2f96", "(eth, haircut, data 0..409)", "UN panel report (Arabic)"]),
    ("report ronin-2022 --lang ar", ['"partial_seed": true', '"policy": "poison"']),
    ("case export ronin-2022", ["6 files + manifest.json"]),
]

# An example line may state its own expectation in a trailing comment: `# -> TEXT` (stdout contains TEXT) or
# `# exit N: TEXT` (exit code N, TEXT in stderr): shown to readers, checked here.
_INLINE = re.compile(r"#\s*(?:->\s*(?P<out>.+?)|exit (?P<code>\d+):\s*(?P<err>.+?))\s*$")


def check_example(where: str, line: str, p: subprocess.CompletedProcess, expect=()) -> None:
    """Assert an example ran as documented: exit code (0 unless the line says otherwise), no traceback, the
    inline expectation of the line and the key outputs `expect` [(fragment of the line, [texts])]."""
    m = _INLINE.search(line)
    code = int(m.group("code")) if m and m.group("code") else 0
    assert p.returncode == code, f"{where}: {line}\n{p.stdout[-1500:]}\n{p.stderr[-2500:]}"
    assert "Traceback" not in p.stderr, f"{where}: {line}\n{p.stderr[-2500:]}"
    if m and m.group("out"):
        assert m.group("out") in p.stdout, f"{where}: {line}: {m.group('out')!r} not in\n{p.stdout[-3000:]}"
    if m and m.group("err"):
        assert m.group("err") in p.stderr, f"{where}: {line}: {m.group('err')!r} not in\n{p.stderr[-3000:]}"
    for fragment, texts in expect:
        if fragment in line:
            for t in texts:
                assert t in p.stdout, f"{where}: {line}: key output {t!r} missing from\n{p.stdout[-3000:]}"


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
    checked = set()
    for line in setup + examples:
        argv = shlex.split(line, comments=True)
        p = subprocess.run([sys.executable, "-m", "chaintrace", *argv[1:]], cwd=cwd, env=env,
                           capture_output=True, text=True, timeout=900)
        check_example(f"docs/{page}", line, p, EXPECT.get(page, ()))
        checked |= {f for f, _ in EXPECT.get(page, ()) if f in line}
    assert checked == {f for f, _ in EXPECT.get(page, ())}, "an expected example is no longer in the page"
