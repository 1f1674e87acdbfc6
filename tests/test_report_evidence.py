"""Honest evidence in trace reports (issue 16, part 1): coverage, assumptions, synthesised ids, partial seeds.

On the real Dune export of transfers into the Lazarus/Ronin addresses (which lacks the theft itself) and on the
Bitcoin simulator (complete data)."""
from __future__ import annotations

import csv
import json
from decimal import Decimal

import pytest
from click.testing import CliRunner

from chaintrace.chains.btc import ingest_block_files
from chaintrace.chains.eth import ingest_transfer_list
from chaintrace.cli import main
from chaintrace.model.ids import is_synthetic_txid
from chaintrace.report.html import render_html
from chaintrace.report.text import to_csv, to_text
from chaintrace.sim import load_truth
from chaintrace.sim.btc import simulate_btc
from chaintrace.store.workspace import Workspace
from chaintrace.trace import read_seed_file, trace
from chaintrace.trace.report import TraceReport, check_invariant
from tests.conftest import dataset

RONIN = "0x098b716b8aaf21512996dc57eb0615e2383e2f96"


@pytest.fixture(scope="module")
def lazarus(tmp_path_factory):
    p = dataset("lazarus-eth-dune-dspytdao", "LazarusTabularTxs1322519.csv")
    rows = []
    with open(p, newline="") as fh:
        for r in csv.DictReader(fh):
            rows.append((r["block_time"], r["from"].replace("\\x", "0x").lower(),
                         r["to"].replace("\\x", "0x").lower(), int(Decimal(r["total_eth"]) * 10**18)))
    root = tmp_path_factory.mktemp("lazev")
    ws = Workspace(root / "data")
    ingest_transfer_list(ws, p)
    r = trace(ws, [RONIN], chain="eth", policy="haircut", min_value=0, explain=[RONIN])
    return {"ws": ws, "rows": rows, "report": r, "root": root, "path": p}


def test_partial_seed_is_measured_against_the_file(lazarus):
    r, rows = lazarus["report"], lazarus["rows"]
    check_invariant(r)
    received = sum(v for _, _, t, v in rows if t == RONIN)
    sent = sum(v for _, f, _, v in rows if f == RONIN)
    assert sent > received  # the export lacks the theft that funded the exploiter
    c = r.coverage
    assert c["partial_seed"] is True
    seed, = c["seeds"]
    assert (int(seed["received_in_data"]), int(seed["sent_in_data"])) == (received, sent)
    assert int(seed["missing"]) == sent - received
    assert 173_000 * 10**18 < sent - received < 174_000 * 10**18  # ~173,600 ETH stolen, not in the data
    assert "theft itself is not in the data" in c["partial_seed_note"]
    assert r.assumptions["opening_balance"]["seeds"] == {RONIN: str(sent - received)}
    assert r.assumptions["opening_balance"]["debits"] == r.stats["opening_balance_assumed"] > 0


def test_coverage_names_range_source_and_horizon(lazarus):
    r, rows = lazarus["report"], lazarus["rows"]
    c = r.coverage
    times = sorted(rows)
    assert c["times"]["first_iso"][:10] == times[0][0][:10] and c["times"]["last_iso"][:10] == times[-1][0][:10]
    assert c["heights"]["synthetic"] is True and c["heights"]["first"] == 0
    assert c["sources"] == [str(lazarus["path"].resolve())]
    assert c["held_as_of"]["height"] == c["heights"]["last"]
    assert f"synthetic block {c['heights']['last']}" in c["held_means"]
    assert c["synthetic_txids"] == len(rows)  # the export has no hash column
    assert r.assumptions["policy"]["name"] == "haircut" and r.assumptions["thresholds"]["min_value"] == 0


def test_every_format_says_partial_and_marks_synthesised_ids(lazarus):
    r = lazarus["report"]
    d = json.loads(r.to_json())
    assert d["coverage"]["partial_seed"] and d["assumptions"]["opening_balance"]["debits"]
    refs = [h["ref"] for h in d["holdings"]] + [s["ref"] for e in d["explain"] for p in e["paths"] for s in p["steps"]]
    assert refs and all(is_synthetic_txid(x) for x in refs)
    assert all(h.get("synthetic_id") is True for h in d["holdings"])
    back = TraceReport.from_dict(d)
    assert back.coverage == r.coverage and back.assumptions == r.assumptions
    text = to_text(back, width=400)
    assert "PARTIAL SEED" in text and "theft itself is not in the data" in text
    assert f"still held (unmoved as of synthetic block {r.coverage['heights']['last']}" in text
    assert "262 debits" in text or f"{r.stats['opening_balance_assumed']} debits" in text
    assert f"{r.holdings[0].ref} [synthesised]" in text
    html = render_html([back])
    assert "Partial seed:" in html and "theft itself is not in the data" in html
    assert html.count("[synthesised]") >= min(10, len(r.holdings))
    assert "not an on-chain id" in html
    assert "synthetic_id" in to_csv(back).splitlines()[0]


def test_show_tx_and_address_explain_synthetic_and_negative(lazarus):
    r, ws = lazarus["report"], lazarus["ws"]
    txid = r.holdings[0].ref.split(":")[0]
    run = CliRunner()
    out = run.invoke(main, ["show", "tx", txid, "--data", str(ws.path)], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "[synthesised]" in out.output and "not an on-chain id" in out.output
    js = json.loads(run.invoke(main, ["show", "tx", txid, "--format", "json", "--data", str(ws.path)]).output)
    assert js["synthetic_id"] is True
    out = run.invoke(main, ["show", "address", RONIN, "--data", str(ws.path)], catch_exceptions=False,
                     env={"COLUMNS": "300"})
    assert out.exit_code == 0, out.output
    assert "-173,598" in out.output and "data is partial" in out.output
    js = json.loads(run.invoke(main, ["show", "address", RONIN, "--format", "json", "--data", str(ws.path)]).output)
    eth, = [b for b in js["balances"] if b["asset"] == "ETH"]
    assert int(eth["balance"]) < 0 and "partial" in eth["note"]


def test_simulator_trace_has_complete_coverage(tmp_path):
    out = tmp_path / "sim"
    simulate_btc(out, txs=1500, seed=7, scenario="peel-chain")
    ws = Workspace(tmp_path / "data")
    ingest_block_files(ws, [out], pow_rules="target-only")
    truth = load_truth(out)
    seeds = read_seed_file(out / "stolen.txt")[:1]
    r = trace(ws, seeds, policy="fifo", min_value=0, tags=[out / "tags.yaml"])
    check_invariant(r)
    con = ws.connect()
    lo, hi, tlo, thi = con.execute("SELECT min(height), max(height), min(time), max(time) FROM btc.blocks").fetchone()
    c = r.coverage
    assert (c["heights"]["first"], c["heights"]["last"], c["times"]["first"], c["times"]["last"]) == (lo, hi, tlo, thi)
    assert c["heights"]["synthetic"] is False and c["synthetic_txids"] == 0 and c["synthetic_txid_note"] is None
    assert c["partial_seed"] is False
    assert f"unspent as of height {hi}" in c["held_means"]
    text = to_text(r, width=300)
    assert "PARTIAL SEED" not in text and "[synthesised]" not in text
    assert f"still held (unspent as of height {hi} /" in text
    assert truth["incidents"]
