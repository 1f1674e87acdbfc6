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
    for block in _bash_blocks(text):
        for line in block.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            argv = shlex.split(line, comments=True)
            assert argv[0] == "chaintrace", line
            p = subprocess.run([sys.executable, "-m", "chaintrace", *argv[1:]], cwd=cwd, env=env,
                               capture_output=True, text=True, timeout=600)
            assert p.returncode == 0, f"{line}\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}"
            assert "Traceback" not in p.stderr, line
            ran += 1
    assert ran >= 15
    for code in _python_blocks(README.read_text()):
        p = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                           timeout=600)
        assert p.returncode == 0, p.stderr[-3000:]
