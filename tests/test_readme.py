"""The README is executable documentation: its Quickstart has exactly the two set-up commands, .ci/run runs
the same test command, and every command of the walkthrough (```bash blocks) runs as written, in order."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

from tests.conftest import DATASETS, REPO
from tests.test_docs_examples import check_example

# key output of walkthrough commands: (a fragment of the command line, texts its stdout must contain)
EXPECT: list[tuple[str, list[str]]] = [
    ("hal-ws ingest btc-blocks", ["439", "0000000025c6b644f8add734be7e666fa4afa43ca0204d623a0c0b1fd2104c7a"]),
    ("hal-ws stats", ["21,950.00000000 BTC", "network"]),
    ("hal-ws show tx f4184fc5", ["170 (00000000d1145790a8694403d4063f323d499e655c83426834d4ce2f8dd4a2ee)",
                                 "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3", "10.00000000"]),
    ("hal-ws show address 12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S", ['"balance": "1800000000"', '"tx_count": 6']),
    ("FROM btc.blocks ORDER BY height DESC LIMIT 3", ["0000000025c6b644f8add734be7e666fa4afa43ca0204d623a0c0b1fd2104c7a"]),
    ("hal-ws trace --from f4184fc5", ["50.00000000", "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3"]),
    ("intel import ofac-sdn ../shared/datasets/ofac-sdn/sdn_advanced_2025-11-19", ["760 sanctions"]),
    ("intel import misp-galaxy", ["1,041 actors"]),
    ("intel lookup 0x098B716B8Aaf21512996dC57EB0615e2383E2f96", ["SANCTIONED", "Lazarus Group", "ronin-2022",
                                                                 "$625,000,000"]),
    ("intel incidents --actor lazarus --since 2022", ["Stake.com", "$41,000,000"]),
    ("intel-ws intel stats", ["744 addresses"]),
    ("simulate btc --out sim-btc --txs 20000 --seed 7 --ingest", ["100.99153958", "ingested 275 blocks"]),
    ("intel import tagpack sim-btc/tags.yaml", ["1,012 tags"]),
    ("intel import actorpack sim-btc/actors.yaml", ["14 actors"]),
    ("sim-ws cluster build", ["25,939", "49,603"]),
    ("sim-ws cluster stats --top 5", ["25,939", "Arbor Exchange"]),
    ("trace --from-file sim-btc/stolen.txt --policy fifo", [
        "be77d6466945268aaa00ebbd2cf810ef015c7186add9025a0ab9c83f345aadd0:1", "72.69160443", "Arbor Exchange"]),
    ("eth-ws ingest eth-etl", ["298", "1102"]),
]

README = REPO / "README.md"


def _section(text: str, title: str) -> str:
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert m, f"README has no '## {title}' section"
    return m.group(1)


def _bash_blocks(text: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M)


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)


def test_quickstart_has_exactly_two_setup_commands():
    blocks = _bash_blocks(_section(README.read_text(), "Quickstart"))
    assert len(blocks) == 2
    for b in blocks:
        lines = [ln for ln in b.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        assert len(lines) == 1, b
    assert "chaintrace demo" in blocks[0]
    assert "pytest" in blocks[1]


def test_ci_runs_the_readme_test_command_verbatim():
    test_cmd = _bash_blocks(_section(README.read_text(), "Quickstart"))[1].strip()
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    commands = [ln for ln in ci if ln.strip() and not ln.lstrip().startswith("#")]
    assert commands[-1].strip() == test_cmd


@pytest.mark.slow
def test_walkthrough_commands_run(tmp_path):
    """Run the walkthrough from a directory whose ../shared/datasets is the real data."""
    if not DATASETS.exists():
        pytest.skip(f"datasets not available at {DATASETS}")
    (tmp_path / "shared").symlink_to(DATASETS.parent)
    cwd = tmp_path / "main"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "CHAINTRACE_DATA"}
    env["CHAINTRACE_DATA"] = str(tmp_path / "default-ws")
    text = _section(README.read_text(), "Walkthrough")
    ran = 0
    checked = set()
    for block in _bash_blocks(text):
        for line in block.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            argv = shlex.split(line, comments=True)
            assert argv[0] == "chaintrace", line
            p = subprocess.run([sys.executable, "-m", "chaintrace", *argv[1:]], cwd=cwd, env=env,
                               capture_output=True, text=True, timeout=600)
            check_example("README", line, p, EXPECT)
            checked |= {f for f, _ in EXPECT if f in line}
            ran += 1
    assert ran >= 15
    assert checked == {f for f, _ in EXPECT}, "an expected example is no longer in the walkthrough"
    for code in _python_blocks(README.read_text()):
        p = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                           timeout=600)
        assert p.returncode == 0, p.stderr[-3000:]
