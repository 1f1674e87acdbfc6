"""The runnable example of docs/monitoring.md (its ```bash block) runs as written, against a local anvil node
(the documented http://127.0.0.1:8545 replaced by the test node's URL), with its key output checked."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.eth.anvil import INSTALL, Anvil, find_anvil


def _bash_lines() -> list[str]:
    text = (REPO / "docs" / "monitoring.md").read_text()
    block = re.search(r"^```bash\n(.*?)^```", text, re.S | re.M).group(1)
    return [x.strip() for x in block.splitlines() if x.strip().startswith("chaintrace ")]


def test_help_has_examples():
    from click.testing import CliRunner

    from chaintrace.cli import main

    for cmd in ("add", "list", "remove", "run", "outbox"):
        p = CliRunner().invoke(main, ["watch", cmd, "--help"])
        assert p.exit_code == 0 and "Example:" in p.output, cmd


@pytest.mark.skipif(find_anvil() is None, reason=f"anvil not installed (run `{INSTALL}`)")
def test_documented_example_runs(tmp_path):
    lines = _bash_lines()
    assert [shlex.split(x)[3:5] for x in lines] == [["watch", "add"], ["watch", "list"], ["watch", "run"],
                                                    ["watch", "outbox"], ["watch", "remove"]]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = {}
    with Anvil() as n:
        n.send(n.accounts[0], n.accounts[1], 10**18)
        for line in lines:
            argv = shlex.split(line.replace("http://127.0.0.1:8545", n.url))
            p = subprocess.run([sys.executable, "-m", "chaintrace", *argv[1:]], capture_output=True, text=True,
                               cwd=tmp_path, env=env, timeout=300)
            assert p.returncode == 0, (line, p.stderr)
            out[argv[4]] = p.stdout
    assert "ronin (eth, from incident): 15 addresses" in out["add"]
    assert "ronin" in out["list"] and "RONIN" not in out["list"]
    assert "1 rounds, 0 alerts" in out["run"]
    assert "removed watchlist ronin (15 items)" in out["remove"]
    assert (tmp_path / "mon" / "eth" / "manifest.json").exists()  # the run ingested the node's blocks
