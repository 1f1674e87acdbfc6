"""Seed files for `chaintrace trace --from-file`: one seed per line, comments, CSV first column, errors."""
from __future__ import annotations

import pytest

from chaintrace.errors import UserError
from chaintrace.trace import read_seed_file

TX = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"


def test_seed_file_lines_comments_and_csv(tmp_path):
    p = tmp_path / "seeds.csv"
    p.write_text(f"# FBI list\n\n{TX}:0\n  12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S , exploiter, 2022-03-23\n"
                 f'"0x098B716B8Aaf21512996dC57EB0615e2383E2f96",lazarus\n{TX}  # the payment\n')
    assert read_seed_file(p) == [f"{TX}:0", "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S",
                                 "0x098B716B8Aaf21512996dC57EB0615e2383E2f96", TX]


def test_seed_file_errors_name_file_and_line(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_text(f"{TX}\nnot-a-seed!\n")
    with pytest.raises(UserError, match=r"bad.txt:2: 'not-a-seed!'"):
        read_seed_file(p)
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    with pytest.raises(UserError, match="no seeds"):
        read_seed_file(empty)


def test_simulator_writes_the_stolen_outputs(tmp_path):
    import json

    from chaintrace.sim import simulate_btc

    simulate_btc(tmp_path / "sim", txs=3000, seed=3, scenario="peel-chain")
    truth = json.loads((tmp_path / "sim" / "truth.json").read_text())
    want = [f"{o['txid']}:{o['vout']}" for i in truth["incidents"] for o in i["stolen"]["outputs"]]
    assert want and read_seed_file(tmp_path / "sim" / "stolen.txt") == want
