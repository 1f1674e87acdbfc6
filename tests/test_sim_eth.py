"""The Ethereum simulator: ethereum-etl columns, internal consistency (balances never negative, value
conserved including gas, EIP-1559), truth agreeing with the export, and the round trip through
`chaintrace ingest eth-etl`."""
from __future__ import annotations

import ast
import csv
import hashlib
import json
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from chaintrace.cli import main
from chaintrace.errors import UserError
from chaintrace.model.encoding import keccak256
from chaintrace.sim import load_truth
from chaintrace.sim.eth import SCENARIOS, simulate_eth
from chaintrace.store.workspace import Workspace
from tests.conftest import dataset

# ethereum-etl 2.4 CSV columns, in order (blockchain-etl/ethereum-etl ethereumetl/jobs/exporters/
# blocks_and_transactions_item_exporter.py, receipts_and_logs_item_exporter.py,
# token_transfers_item_exporter.py, traces_item_exporter.py, tokens_item_exporter.py)
ETL = {
    "blocks": "number hash parent_hash nonce sha3_uncles logs_bloom transactions_root state_root receipts_root miner "
              "difficulty total_difficulty size extra_data gas_limit gas_used timestamp transaction_count "
              "base_fee_per_gas withdrawals_root withdrawals blob_gas_used excess_blob_gas",
    "transactions": "hash nonce block_hash block_number transaction_index from_address to_address value gas gas_price "
                    "input block_timestamp max_fee_per_gas max_priority_fee_per_gas transaction_type "
                    "max_fee_per_blob_gas blob_versioned_hashes",
    "receipts": "transaction_hash transaction_index block_hash block_number cumulative_gas_used gas_used "
                "contract_address root status effective_gas_price l1_fee l1_gas_used l1_gas_price l1_fee_scalar "
                "blob_gas_price blob_gas_used",
    "logs": "log_index transaction_hash transaction_index block_hash block_number address data topics",
    "token_transfers": "token_address from_address to_address value transaction_hash log_index block_number",
    "traces": "block_number transaction_hash transaction_index from_address to_address value input output trace_type "
              "call_type reward_type gas gas_used subtraces trace_address error status trace_id",
    "tokens": "address symbol name decimals total_supply block_number",
}
REAL = ("eth-raw-blocks", "ethereum-etl")


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    root = tmp_path_factory.mktemp("simeth")
    out = root / "out"
    r = simulate_eth(out, txs=6000, seed=4, scenario="bridge-drain")
    rows = {}
    for k in ETL:
        with open(out / f"{k}.csv", newline="") as fh:
            rows[k] = list(csv.DictReader(fh))
    return {"out": out, "result": r, "rows": rows, "truth": load_truth(out)}


def test_csv_columns_are_ethereum_etls(sim):
    for k, cols in ETL.items():
        with open(sim["out"] / f"{k}.csv", newline="") as fh:
            assert next(csv.reader(fh)) == cols.split(), k


def test_columns_match_the_real_export(sim):
    """Every column we write that the real ethereum-etl export of mainnet blocks has, it has under the same
    name (the real files are JSON lines with the same field names, from ethereum-etl 2.3/2.4)."""
    base = dataset(*REAL)
    real = {}
    for name, path in (("blocks", "blocks_17173049_17173050/expected_blocks.json"),
                       ("transactions", "blocks_17173049_17173050/expected_transactions.json"),
                       ("logs", "blocks_17173049_17173050/expected_logs.json"),
                       ("token_transfers", "blocks_17173049_17173050/expected_token_transfers.json"),
                       ("traces", "blocks_508110_508110/expected_traces.json")):
        with open(base / path) as fh:
            real[name] = set(json.loads(fh.readline()))
    newer = {"blob_gas_used", "excess_blob_gas", "max_fee_per_blob_gas", "blob_versioned_hashes"}  # ethereum-etl 2.4
    for name, keys in real.items():
        ours = set(ETL[name].split())
        assert ours - newer <= keys | {"receipt_" + c for c in ours}, (name, ours - newer - keys)
    # receipts are the streaming form's receipt_* fields of a transaction
    rec = {c.removeprefix("receipt_") for c in real["transactions"] if c.startswith("receipt_")}
    assert set(ETL["receipts"].split()) - {"transaction_hash", "transaction_index", "block_hash", "block_number"} \
        <= rec | {"blob_gas_price", "blob_gas_used"}
    # formats: lower-case 0x addresses, 0x hashes, integers as decimal strings
    tx = sim["rows"]["transactions"][10]
    assert tx["hash"].startswith("0x") and len(tx["hash"]) == 66 and tx["from_address"] == tx["from_address"].lower()
    assert int(tx["value"]) >= 0 and int(tx["transaction_type"]) in (0, 2)


def _replay(rows):
    """Recompute every balance from the export alone, in chain order; fail if one goes negative."""
    eth = defaultdict(int)
    tok = defaultdict(int)
    supply = defaultdict(int)
    burned = issued = 0
    rec = {r["transaction_hash"]: r for r in rows["receipts"]}
    blocks = {int(b["number"]): b for b in rows["blocks"]}
    traces = defaultdict(list)
    genesis = []
    for t in rows["traces"]:
        if t["transaction_hash"]:
            traces[t["transaction_hash"]].append(t)
        else:
            genesis.append(t)
    tts = defaultdict(list)
    for t in rows["token_transfers"]:
        tts[t["transaction_hash"]].append(t)
    for g in genesis:
        assert g["trace_type"] == "genesis" and g["block_number"] == "0"
        eth[g["to_address"]] += int(g["value"])
        issued += int(g["value"])
    by_block = defaultdict(list)
    for t in rows["transactions"]:
        by_block[int(t["block_number"])].append(t)
    negative = []
    for n in sorted(blocks):
        b = blocks[n]
        base = int(b["base_fee_per_gas"])
        for t in sorted(by_block[n], key=lambda t: int(t["transaction_index"])):
            r = rec[t["hash"]]
            used, eff = int(r["gas_used"]), int(r["effective_gas_price"])
            assert eff >= base
            fee = used * eff
            eth[t["from_address"]] -= fee
            eth[b["miner"]] += used * (eff - base)
            burned += used * base
            if r["status"] == "1":
                dest = t["to_address"] or r["contract_address"]
                eth[t["from_address"]] -= int(t["value"])
                eth[dest] += int(t["value"])
                for tr in traces[t["hash"]]:
                    if tr["trace_address"]:
                        eth[tr["from_address"]] -= int(tr["value"])
                        eth[tr["to_address"]] += int(tr["value"])
                for tt in tts[t["hash"]]:
                    a, v = tt["token_address"], int(tt["value"])
                    if tt["from_address"] == "0x" + "0" * 40:
                        supply[a] += v
                    else:
                        tok[(a, tt["from_address"])] -= v
                    tok[(a, tt["to_address"])] += v
            else:
                assert not tts[t["hash"]] and all(not tr["trace_address"] for tr in traces[t["hash"]])
            for a in (t["from_address"], t["to_address"]):
                if eth[a] < 0:
                    negative.append((t["hash"], a, eth[a]))
            for k, v in tok.items():
                if v < 0:
                    negative.append((t["hash"], k, v))
        for wd in ast.literal_eval(b["withdrawals"]):
            eth[wd["address"]] += wd["amount"] * 10**9
            issued += wd["amount"] * 10**9
    return eth, tok, supply, issued, burned, negative


def test_balances_never_negative_and_value_is_conserved_with_gas(sim):
    eth, tok, supply, issued, burned, negative = _replay(sim["rows"])
    assert negative == []
    cs = sim["truth"]["chain_summary"]
    assert issued == cs["issued"] and burned == cs["burned"]
    assert sum(eth.values()) == issued - burned  # fees: the base fee is burned, the tip moves to the miner
    for t in sim["rows"]["tokens"]:
        total = sum(v for (a, _h), v in tok.items() if a == t["address"])
        assert total == supply[t["address"]] == int(t["total_supply"])


def test_blocks_link_and_follow_eip1559(sim):
    blocks = sorted(sim["rows"]["blocks"], key=lambda b: int(b["number"]))
    assert [int(b["number"]) for b in blocks] == list(range(len(blocks)))
    for p, b in zip(blocks, blocks[1:]):
        assert b["parent_hash"] == p["hash"]
        assert int(b["timestamp"]) - int(p["timestamp"]) in (12, 24)
        gu, base = int(p["gas_used"]), int(p["base_fee_per_gas"])
        target = 15_000_000
        if int(p["number"]) > 0:
            if gu > target:
                exp = base + max(1, base * (gu - target) // target // 8)
            else:
                exp = max(7, base - base * (target - gu) // target // 8)
            assert int(b["base_fee_per_gas"]) == exp
        assert int(b["gas_used"]) <= int(b["gas_limit"])
    txs = defaultdict(int)
    for t in sim["rows"]["transactions"]:
        txs[t["block_number"]] += 1
    rec = defaultdict(list)
    for r in sim["rows"]["receipts"]:
        rec[r["block_number"]].append(r)
    for b in blocks:
        assert int(b["transaction_count"]) == txs[b["number"]]
        rs = sorted(rec[b["number"]], key=lambda r: int(r["transaction_index"]))
        cum = 0
        for r in rs:
            cum += int(r["gas_used"])
            assert int(r["cumulative_gas_used"]) == cum
        assert cum == int(b["gas_used"])


def test_logs_bloom_and_token_transfers_match_logs(sim):
    rows = sim["rows"]
    blooms = {b["number"]: int(b["logs_bloom"], 16) for b in rows["blocks"]}
    logs = {(lg["transaction_hash"], lg["log_index"]): lg for lg in rows["logs"]}
    for lg in rows["logs"][:500]:
        for item in [lg["address"]] + lg["topics"].split(","):
            h = keccak256(bytes.fromhex(item[2:]))
            for i in (0, 2, 4):
                assert blooms[lg["block_number"]] >> (((h[i] << 8) | h[i + 1]) & 2047) & 1
    transfer = "0x" + keccak256(b"Transfer(address,address,uint256)").hex()
    for t in rows["token_transfers"]:
        lg = logs[(t["transaction_hash"], t["log_index"])]
        topics = lg["topics"].split(",")
        assert lg["address"] == t["token_address"] and topics[0] == transfer
        assert topics[1][-40:] == t["from_address"][2:] and topics[2][-40:] == t["to_address"][2:]
        assert int(lg["data"], 16) == int(t["value"])
    # failed transactions exist, pay gas, and move nothing
    failed = [r for r in rows["receipts"] if r["status"] == "0"]
    assert failed and all(int(r["gas_used"]) > 0 for r in failed)


def test_truth_agrees_with_the_export(sim):
    t, rows = sim["truth"], sim["rows"]
    inc, = t["incidents"]
    txs = {x["hash"]: x for x in rows["transactions"]}
    tts = defaultdict(list)
    for x in rows["token_transfers"]:
        tts[x["transaction_hash"]].append(x)
    rec = {r["transaction_hash"]: r for r in rows["receipts"]}
    addr = {r["address"]: r for r in pq.read_table(sim["out"] / "addresses.parquet").to_pylist()}
    names = {e["id"]: e["name"] for e in t["entities"]}
    assert inc["cashouts"]
    for c in inc["cashouts"]:
        tx = txs[c["tx_hash"]]
        assert rec[c["tx_hash"]]["status"] == "1" and int(tx["block_number"]) == c["block"]
        if c["asset"] == "ETH":
            assert tx["to_address"] == c["to"] and int(tx["value"]) == c["value"]
        else:
            assert any(x["to_address"] == c["to"] and int(x["value"]) == c["value"] and x["token_address"] == c["asset"]
                       for x in tts[c["tx_hash"]])
        assert c["value"] >= c["amount"] == c["stolen"] + c["mixed"] > 0
        assert addr[c["to"]]["role"] == "deposit" and names[addr[c["to"]]["entity"]] == c["exchange"]
    for s in inc["stolen"].values():
        assert sum(x["value"] for x in s["transfers"]) == s["total"] > 0
    for b in inc["balance"].values():
        spent = sum(v for k, v in b.items() if k not in ("stolen_total", "from_swaps"))
        assert spent == b["stolen_total"] + b.get("from_swaps", 0)
    m = inc["mixed_balance"]
    assert sum(v for k, v in m.items() if k != "received") == m["received"] > 0
    assert inc["swaps"] and inc["mixer_deposits"] and inc["mixer_withdrawals"] and inc["bridged"]
    assert inc["cashouts_via_mixer"]
    for w in inc["mixer_withdrawals"]:
        assert txs[w["tx_hash"]]["from_address"] in t["mixer"]["relayers"]
        assert w["to"] in inc["launderer_addresses"]
    for d in inc["mixer_deposits"]:
        assert txs[d["tx_hash"]]["to_address"] in t["mixer"]["pools"].values()
        assert int(txs[d["tx_hash"]]["value"]) == d["value"]
    # every address in the export has its true entity
    seen = set()
    for k, cols in (("transactions", ("from_address", "to_address")), ("traces", ("from_address", "to_address")),
                    ("token_transfers", ("from_address", "to_address"))):
        for r in rows[k]:
            for c in cols:
                if r[c] and r[c] != "0x" + "0" * 40:
                    seen.add(r[c])
    assert seen <= set(addr)
    tags = yaml.safe_load((sim["out"] / "tags.yaml").read_text())["tags"]
    assert any(x["category"] == "perpetrator" and x["address"] == inc["attacker"] for x in tags)


def test_ingest_round_trip(sim, tmp_path):
    runner = CliRunner()
    r = runner.invoke(main, ["--data", str(tmp_path / "data"), "ingest", "eth-etl", str(sim["out"]), "--format", "json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["blocks"] == sim["truth"]["chain_summary"]["blocks"]
    assert rep["transactions"] == sim["truth"]["chain_summary"]["transactions"] == sim["result"].transactions
    assert rep["warnings"] == [] and rep["internal_transfers"] and rep["receipts"]
    failed = sum(1 for x in sim["rows"]["receipts"] if x["status"] == "0")
    assert rep["failed_transactions"] == failed
    # the store's ETH balances equal the ones replayed from the CSV files
    eth, *_ = _replay(sim["rows"])
    con = Workspace(tmp_path / "data").connect()
    got = dict(con.execute("""
        WITH m AS (SELECT to_address a, value v FROM eth.transfers WHERE asset_id = 0 AND to_address IS NOT NULL
                   UNION ALL SELECT from_address, -value FROM eth.transfers WHERE asset_id = 0 AND from_address IS NOT NULL)
        SELECT a, sum(v) FROM m GROUP BY a""").fetchall())
    for a, v in eth.items():
        assert int(got.get(a, 0)) == v, a


def test_same_seed_same_bytes_and_scenarios(tmp_path):
    a = simulate_eth(tmp_path / "a", txs=2000, seed=3, scenario="fan-out")
    b = simulate_eth(tmp_path / "b", txs=2000, seed=3, scenario="fan-out")
    simulate_eth(tmp_path / "c", txs=2000, seed=4, scenario="fan-out")

    def digest(d):
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())}

    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a")["transactions.csv"] != digest(tmp_path / "c")["transactions.csv"]
    inc, = load_truth(tmp_path / "a")["incidents"]
    assert inc["mixer_deposits"] == [] and inc["bridged"] == []
    assert a.transactions == b.transactions == 2000
    simulate_eth(tmp_path / "m", txs=3000, seed=3, scenario="mixer")
    inc, = load_truth(tmp_path / "m")["incidents"]
    assert inc["balance"]["ETH"]["mixer_deposited"] > 0
    simulate_eth(tmp_path / "n", txs=1500, seed=3, scenario="none")
    assert load_truth(tmp_path / "n")["incidents"] == []
    assert set(SCENARIOS) == {"bridge-drain", "fan-out", "mixer", "otc", "none"}


def test_eth_errors(tmp_path):
    with pytest.raises(UserError, match="unknown scenario"):
        simulate_eth(tmp_path / "x", scenario="nope")
    with pytest.raises(UserError, match="at least 1000"):
        simulate_eth(tmp_path / "x", txs=5)
    assert list(Path(tmp_path).iterdir()) == []
