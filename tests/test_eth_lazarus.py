"""Real DPRK data on Ethereum: the Lazarus (Ronin) transfers of the dspytdao Dune export load as transfers
(exact wei from the decimal text), the tayvano incident addresses load as tags through chaintrace.intel and
seed a trace whose totals are checked against the CSV independently."""
from __future__ import annotations

import csv
from decimal import Decimal

import pytest

from chaintrace.chains.eth import ingest_transfer_list
from chaintrace.errors import UserError
from chaintrace.store.workspace import Workspace
from chaintrace.trace import trace
from chaintrace.trace.report import check_invariant
from tests.conftest import dataset

RONIN = "0x098b716b8aaf21512996dc57eb0615e2383e2f96"


def _csv_rows():
    p = dataset("lazarus-eth-dune-dspytdao", "LazarusTabularTxs1322519.csv")
    rows = []
    with open(p, newline="") as fh:
        for r in csv.DictReader(fh):
            rows.append((r["from"].replace("\\x", "0x").lower(), r["to"].replace("\\x", "0x").lower(),
                         int(Decimal(r["total_eth"]) * 10**18)))
    return p, rows


@pytest.fixture(scope="module")
def lazarus(tmp_path_factory):
    p, rows = _csv_rows()
    ws = Workspace(tmp_path_factory.mktemp("lazarus") / "data")
    rep = ingest_transfer_list(ws, p)
    return ws, rep, rows


def test_transfers_load_exactly(lazarus):
    ws, rep, rows = lazarus
    assert rep.transactions == len(rows) == 436
    nonzero = [r for r in rows if r[2] > 0]
    assert rep.transfers == len(nonzero) == 311
    con = ws.connect()
    assert con.execute("SELECT sum(value) FROM eth.transfers").fetchone()[0] == sum(r[2] for r in rows)
    got = sorted((f, t, int(v)) for f, t, v in con.execute(
        "SELECT from_address, to_address, value FROM eth.transfers").fetchall())
    assert got == sorted(nonzero)
    into_ronin = sum(v for _, t, v in rows if t == RONIN)
    assert con.execute("SELECT sum(value) FROM eth.transfers WHERE to_address = ?", [RONIN]).fetchone()[0] == into_ronin
    assert ws.chain("eth").meta["synthetic_blocks"] is True
    # loading again is idempotent; a real chain store refuses a transfer list
    again = ingest_transfer_list(ws, dataset("lazarus-eth-dune-dspytdao", "LazarusTabularTxs1322519.csv"))
    assert again.blocks == 0 and again.already_stored == rep.blocks


def test_real_store_refuses_transfer_list(tmp_path):
    from chaintrace.chains.eth import ingest_etl

    ws = Workspace(tmp_path / "data")
    ingest_etl(ws, dataset("eth-raw-blocks", "ethereum-etl", "blocks_17173049_17173050"))
    with pytest.raises(UserError, match="holds real Ethereum blocks"):
        ingest_transfer_list(ws, dataset("lazarus-eth-dune-dspytdao", "LazarusTabularTxs1322519.csv"))


def test_bad_transfer_list_names_line(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("block_time,from,to,total_eth\n2022-03-29T21:41:18+00:00,\\x03cf40b900971561ac6bd997ef1fe939dcbc95e2,"
                 "\\x098b716b8aaf21512996dc57eb0615e2383e2f96,0.5\n2022-03-30,0x12,0x098b716b8aaf21512996dc57eb0615e2383e2f96,1\n")
    with pytest.raises(UserError, match=r"t.csv:3: not an address"):
        ingest_transfer_list(Workspace(tmp_path / "d"), p)
    p.write_text("block_time,from,to,total_eth\n2022-03-30,0x03cf40b900971561ac6bd997ef1fe939dcbc95e2,"
                 "0x098b716b8aaf21512996dc57eb0615e2383e2f96,0.0000000000000000001\n")
    with pytest.raises(UserError, match="not a whole number of wei"):
        ingest_transfer_list(Workspace(tmp_path / "d"), p)


def test_tayvano_incident_addresses_seed_a_trace(lazarus):
    from chaintrace.intel import load_tags
    from chaintrace.intel import import_paths

    ws, _, rows = lazarus
    src = dataset("dprk-hacks-tayvano", "dprk_incident_addresses.csv")
    imp = import_paths(ws, "incidents", [src])
    assert imp["totals"]["seeds"] > 400
    tags = [t for t in load_tags(ws, "eth") if t.extra.get("incident_id") == "ronin-2022" or "Ronin" in (t.label or "")]
    con = ws.connect()
    present = {a for (a,) in con.execute("SELECT address FROM eth.addresses").fetchall()}
    seeds = sorted({t.address for t in tags if t.address in present and t.extra.get("side", "attacker") != "victim"})
    assert RONIN in seeds
    # seeds that received something in the list
    received = {t for _, t, v in rows if v > 0}
    seeds = [s for s in seeds if s in received]
    r = trace(ws, seeds, chain="eth", policy="haircut", min_value=0)
    check_invariant(r)
    ss = set(seeds)
    want = sum(v for _, t, v in rows if t in ss)
    assert sum(x.nominal for x in r.seeds) == want
    # what seeds sent each other may already carry taint (not minted twice); from outsiders it is all new
    from_outside = sum(v for f, t, v in rows if t in ss and f not in ss)
    assert from_outside <= r.total_seeded["ETH"] <= want
    held = {h.address: h for h in r.holdings}
    assert RONIN in held and "Ronin" in (held[RONIN].label or "")
