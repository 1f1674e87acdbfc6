"""docs/intake.md runs as written, in page order (the tip id of `tips submit` replaces tip-XXXXXXXXXXXX),
and the key output is checked: the sample article's amounts, the merge proposal, the accepted aggregate,
the decrypted tip, the case opened by triage."""
from __future__ import annotations

import re
import shlex

import pytest
from click.testing import CliRunner

from chaintrace.cli import main
from tests.conftest import DATASETS, REPO

PAGE = REPO / "docs" / "intake.md"


def _blocks(kind: str) -> list[str]:
    """The page's fenced blocks of one info string ("" for plain fences), fences paired in order."""
    out, cur, info = [], None, None
    for line in PAGE.read_text().splitlines(keepends=True):
        if line.startswith("```"):
            if cur is None:
                cur, info = [], line[3:].strip()
            else:
                if info == kind:
                    out.append("".join(cur))
                cur = None
        elif cur is not None:
            cur.append(line)
    return out


def test_intake_page_examples(tmp_path, monkeypatch):
    fixture = DATASETS.parent / "fixtures" / "news" / "un-panel-316m.ar.txt"
    if not fixture.exists():
        pytest.skip(f"fixture not available: {fixture}")
    (tmp_path / "shared").symlink_to(DATASETS.parent)
    cwd = tmp_path / "main"
    cwd.mkdir()
    (cwd / "tip.json").write_text(_blocks("json")[0])
    monkeypatch.chdir(cwd)          # in-process (CliRunner): one import of chaintrace for the whole page
    monkeypatch.setenv("CHAINTRACE_DATA", str(tmp_path / "ws"))
    lines = [ln.strip() for b in _blocks("") for ln in b.splitlines() if ln.strip().startswith("chaintrace ")]
    assert len(lines) >= 15
    out: dict[str, str] = {}
    tip = None
    for line in lines:
        if tip:
            line = line.replace("tip-XXXXXXXXXXXX", tip)
        argv = shlex.split(line)
        r = CliRunner().invoke(main, argv[1:])
        assert r.exit_code == 0, f"{line}\n{r.output[-3000:]}"
        out[line] = r.output
        if line.startswith("chaintrace tips submit"):
            tip = re.search(r"tip-[0-9a-f]{12}", r.output).group(0)
    first = lines[0]
    for amount in ("$316,400,000", "$281,000,000", "$23,000,000", "$81,000,000", "$60,000,000"):
        assert amount in out[first]
    assert "Bangladesh Bank" in out[first] and "2019..2020-11" in out[first]
    accept_bb = next(k for k in out if k.startswith("chaintrace intel candidates accept cand-741"))
    assert "merge it" in out[accept_bb] and "bangladesh-bank-2016" in out[accept_bb]
    assert "accepted as incident" in out[next(k for k in out if "accept cand-3cd" in k)]
    assert "Illustrative tip" in out[next(k for k in out if k.startswith("chaintrace tips show"))]
    assert "case case-" in out[next(k for k in out if k.startswith("chaintrace tips triage"))]
    assert "Ronin bridge outflows" in out["chaintrace case list"]
    assert (cwd / "tips-export" / f"{tip}.json").exists()
