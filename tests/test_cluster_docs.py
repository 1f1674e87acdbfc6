"""docs/clustering.md's walkthrough runs as written, and every `chaintrace cluster` --help example is one of its
commands (so the examples run too). The walkthrough depends on the simulator's determinism (same seed, same
chain): if the simulator changes, this test names the command whose expectation broke."""
from __future__ import annotations

import re
import shlex

import pytest
from click.testing import CliRunner

from chaintrace.cli import main
from tests.conftest import REPO

DOC = REPO / "docs" / "clustering.md"


def walkthrough() -> list[str]:
    text = DOC.read_text()
    block = text.split("```console", 1)[1].split("```", 1)[0]
    return [line[2:].strip() for line in block.splitlines() if line.startswith("$ ")]


@pytest.mark.slow
def test_walkthrough_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "250")
    r = CliRunner()
    outputs = {}
    for cmd in walkthrough():
        argv = shlex.split(cmd)
        assert argv[0] == "chaintrace"
        res = r.invoke(main, argv[1:], catch_exceptions=False)
        assert res.exit_code == 0, f"{cmd}\n{res.output}"
        outputs[cmd] = res.output
    show = next(o for c, o in outputs.items() if " cluster show " in c)
    assert "arbor exchange" in show and "493 addresses" in show and "316 tagged addresses" in show
    whys = [o for c, o in outputs.items() if " cluster why " in c]
    assert "are one entity" in whys[0] and "co-spent as inputs of" in whys[0]
    assert "not" in whys[1] and "coinjoin (wasabi2)" in whys[1]
    assert "whirlpool" in next(o for c, o in outputs.items() if " cluster coinjoins " in c)
    excl = [o for c, o in outputs.items() if " cluster exclude " in c]
    assert "1 transaction(s) excluded" in excl[0] and "0 transaction(s) excluded" in excl[1]
    tr = next(o for c, o in outputs.items() if c.startswith("chaintrace --data ws trace"))
    assert "Arbor Exchange" in tr


def test_help_examples_are_walkthrough_commands():
    cmds = {re.sub(r"^chaintrace --data ws ", "chaintrace ", c) for c in walkthrough()}
    r = CliRunner()
    for sub in ("build", "show", "why", "exclude", "stats", "coinjoins"):
        res = r.invoke(main, ["cluster", sub, "--help"])
        assert res.exit_code == 0
        ex = res.output.split("Example:", 1)[1].strip().splitlines()[0].strip()
        assert ex in cmds, f"`{ex}` (cluster {sub} --help) is not in docs/clustering.md"
