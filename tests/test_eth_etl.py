"""ethereum-etl ingest: the real export of mainnet blocks 17,173,049-050 ingests exactly (JSON and the same
records as CSV), trace_block answers map like ethereum-etl's, bad input is refused with file and line and
leaves nothing behind, re-runs and forks behave."""
from __future__ import annotations

import csv
import json
import shutil

import pytest

from chaintrace.chains.eth import ingest_etl
from chaintrace.errors import UserError
from chaintrace.store.workspace import Workspace
from tests.conftest import dataset

BLOCKS = ("eth-raw-blocks", "ethereum-etl", "blocks_17173049_17173050")
TRACES = ("eth-raw-blocks", "ethereum-etl", "blocks_508110_508110")


def _rows(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    d = dataset(*BLOCKS)
    ws = Workspace(tmp_path_factory.mktemp("real") / "data")
    rep = ingest_etl(ws, d, chain_id=1)
    return ws, rep, d


def test_real_export_ingests_exactly(real):
    ws, rep, d = real
    blocks, txs = _rows(d / "expected_blocks.json"), _rows(d / "expected_transactions.json")
    tts = _rows(d / "expected_token_transfers.json")
    assert (rep.blocks, rep.transactions, rep.network) == (2, 298, "mainnet")
    con = ws.connect()
    got = con.execute("SELECT height, hash, parent_hash, time, miner, gas_used, base_fee_per_gas, n_tx, "
                      "n_withdrawals FROM eth.blocks ORDER BY height").fetchall()
    assert got == [(b["number"], b["hash"], b["parent_hash"], b["timestamp"], b["miner"], b["gas_used"],
                    b["base_fee_per_gas"], b["transaction_count"], len(b["withdrawals"])) for b in blocks]
    stored = {r[0]: r[1:] for r in con.execute(
        "SELECT hash, height, tx_index, from_address, to_address, value, status, gas_used, effective_gas_price, "
        "fee, burned, tip, nonce, input FROM eth.transactions").fetchall()}
    base = {b["number"]: b["base_fee_per_gas"] for b in blocks}
    assert len(stored) == len(txs)
    for t in txs:
        s = stored[t["hash"]]
        fee = t["receipt_gas_used"] * t["receipt_effective_gas_price"]
        burned = t["receipt_gas_used"] * base[t["block_number"]]
        assert s == (t["block_number"], t["transaction_index"], t["from_address"], t["to_address"], t["value"],
                     t["receipt_status"], t["receipt_gas_used"], t["receipt_effective_gas_price"], fee, burned,
                     fee - burned, t["nonce"], bytes.fromhex(t["input"][2:])), t["hash"]
    # failed transactions move no value but pay gas
    failed = [t for t in txs if t["receipt_status"] == 0]
    assert rep.failed_transactions == len(failed) == 9
    for t in failed:
        kinds = {k for (k,) in con.execute("SELECT kind FROM eth.transfers WHERE tx_hash = ?", [t["hash"]]).fetchall()}
        assert kinds <= {"fee_burn", "fee_tip"}
    # every token transfer, with its exact value (the largest is above 2**64)
    got = sorted(con.execute("SELECT tx_hash, log_index, token_address, from_address, to_address, value "
                             "FROM eth.transfers WHERE kind = 'token'").fetchall())
    want = sorted((t["transaction_hash"], t["log_index"], t["token_address"], t["from_address"], t["to_address"],
                   t["value"]) for t in tts)
    assert got == want and max(v for *_, v in got) > 2**64
    # top-level ETH value of successful transactions
    calls = con.execute("SELECT coalesce(sum(value), 0) FROM eth.transfers WHERE kind IN ('call', 'create')").fetchone()[0]
    assert calls == sum(t["value"] for t in txs if t["receipt_status"] == 1)
    # withdrawals: gwei -> wei
    w = con.execute("SELECT sum(value), count(*) FROM eth.transfers WHERE kind = 'withdrawal'").fetchone()
    assert w == (sum(x["amount"] for b in blocks for x in b["withdrawals"]) * 10**9, 32)
    # fees are transfers: burned + tip per transaction equal its fee
    assert con.execute("""SELECT count(*) FROM eth.transactions t WHERE t.fee IS DISTINCT FROM
                          (SELECT coalesce(sum(value), 0) FROM eth.transfers r
                           WHERE r.tx_id = t.tx_id AND kind IN ('fee_burn', 'fee_tip'))""").fetchone() == (0,)
    # assets: ETH first, WETH known by its mainnet address
    assert con.execute("SELECT asset_id, symbol FROM eth.assets WHERE asset_id <= 1 ORDER BY 1").fetchall() == \
        [(0, "ETH"), (1, "WETH")]


def test_rerun_is_idempotent(real, tmp_path):
    ws, rep, d = real
    before = ws.chain("eth").manifest["commit"]
    again = ingest_etl(ws, d)
    assert (again.blocks, again.already_stored, again.commits) == (0, 2, 0)
    assert ws.chain("eth").manifest["commit"] == before


def _write_csv(src_rows, path, cols):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for r in src_rows:
            out = []
            for c in cols:
                v = r.get(c)
                if isinstance(v, list):
                    v = json.dumps(v) if v and isinstance(v[0], dict) else ",".join(map(str, v))
                out.append("" if v is None else v)
            w.writerow(out)


def test_csv_form_gives_the_same_store(real, tmp_path):
    """The same real records written as ethereum-etl CSV (batch form: receipts in receipts.csv) ingest to
    the same tables as the JSON export."""
    ws, _, d = real
    blocks, txs = _rows(d / "expected_blocks.json"), _rows(d / "expected_transactions.json")
    out = tmp_path / "csv"
    out.mkdir()
    bcols = ["number", "hash", "parent_hash", "nonce", "sha3_uncles", "logs_bloom", "transactions_root", "state_root",
             "receipts_root", "miner", "difficulty", "total_difficulty", "size", "extra_data", "gas_limit", "gas_used",
             "timestamp", "transaction_count", "base_fee_per_gas", "withdrawals_root", "withdrawals"]
    _write_csv(blocks, out / "blocks.csv", bcols)
    tcols = ["hash", "nonce", "block_hash", "block_number", "transaction_index", "from_address", "to_address", "value",
             "gas", "gas_price", "input", "block_timestamp", "max_fee_per_gas", "max_priority_fee_per_gas",
             "transaction_type"]
    _write_csv(txs, out / "transactions.csv", tcols)
    receipts = [{"transaction_hash": t["hash"], "transaction_index": t["transaction_index"],
                 "block_hash": t["block_hash"], "block_number": t["block_number"],
                 "cumulative_gas_used": t["receipt_cumulative_gas_used"], "gas_used": t["receipt_gas_used"],
                 "contract_address": t["receipt_contract_address"], "root": None, "status": t["receipt_status"],
                 "effective_gas_price": t["receipt_effective_gas_price"]} for t in txs]
    _write_csv(receipts, out / "receipts.csv", list(receipts[0]))
    _write_csv(_rows(d / "expected_token_transfers.json"), out / "token_transfers.csv",
               ["token_address", "from_address", "to_address", "value", "transaction_hash", "log_index", "block_number"])
    _write_csv(_rows(d / "expected_logs.json"), out / "logs.csv",
               ["log_index", "transaction_hash", "transaction_index", "block_hash", "block_number", "address", "data",
                "topics"])
    ws2 = Workspace(tmp_path / "data")
    ingest_etl(ws2, out, chain_id=1)
    for q in ("SELECT * FROM eth.transfers ORDER BY transfer_id",
              "SELECT * EXCLUDE (nonce) FROM eth.transactions ORDER BY tx_id",
              "SELECT height, hash, parent_hash, time, miner, base_fee_per_gas, n_tx, n_withdrawals, first_tx_id, "
              "first_transfer_id, n_transfers FROM eth.blocks ORDER BY height",
              "SELECT * FROM eth.addresses ORDER BY address_id"):
        a, b = ws.connect().execute(q).fetchall(), ws2.connect().execute(q).fetchall()
        assert a == b, q


def test_trace_block_and_traces_file_map_like_ethereum_etl():
    """trace_block (a real 2015 answer) -> our trace rows == ethereum-etl's expected_traces.json, and reading
    that file gives the same rows."""
    from chaintrace.chains.eth.etl import _Stream, find_files
    from chaintrace.chains.eth.rpc import parity_trace_rows

    d = dataset(*TRACES)
    answer = json.loads((d / "web3_response.trace_block_0x7c0ce.json").read_text())["result"]
    rows = parity_trace_rows(answer, 508110)
    expected = _rows(d / "expected_traces.json")
    assert len(rows["trace_type"]) == len(expected) == 4
    files = find_files(d)
    table, _ = _Stream("traces", files["traces"]).take(None)
    for i, e in enumerate(expected):
        for c in ("from_address", "to_address", "trace_type", "call_type", "reward_type", "transaction_hash",
                  "transaction_index", "error", "block_number"):
            assert rows[c][i] == e[c] == table[c][i].as_py(), c
        assert rows["value"][i] == str(e["value"]) == table["value"][i].as_py()
        assert rows["trace_address"][i] == ",".join(map(str, e["trace_address"])) == table["trace_address"][i].as_py()
    assert [r for r in rows["trace_type"]] == ["create", "call", "reward", "reward"]


def _copy(d, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(d, out)
    for p in out.iterdir():
        p.chmod(0o644)
    return out


def test_bad_input_names_file_and_line_and_commits_nothing(tmp_path):
    d = dataset(*BLOCKS)
    out = _copy(d, tmp_path)
    f = out / "expected_transactions.json"
    lines = f.read_text().splitlines()
    rec = json.loads(lines[41])
    rec["to_address"] = "0x12345"
    lines[41] = json.dumps(rec)
    f.write_text("\n".join(lines) + "\n")
    ws = Workspace(tmp_path / "data")
    with pytest.raises(UserError) as e:
        ingest_etl(ws, out)
    assert f"{f}:42" in str(e.value) and "to_address" in str(e.value)
    assert not ws.chain("eth").exists
    # a value that is not an amount
    out2 = _copy(d, tmp_path / "b")
    f2 = out2 / "expected_token_transfers.json"
    lines = f2.read_text().splitlines()
    rec = json.loads(lines[3])
    rec["value"] = -5
    lines[3] = json.dumps(rec)
    f2.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=r"expected_token_transfers.json:4: value"):
        ingest_etl(ws, out2)
    # a missing transaction (block declares more)
    out3 = _copy(d, tmp_path / "c")
    f3 = out3 / "expected_transactions.json"
    f3.write_text("\n".join(f3.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(UserError, match="declares 182 transactions, the export has 181"):
        ingest_etl(ws, out3)
    with pytest.raises(UserError, match="no ethereum-etl blocks file"):
        ingest_etl(ws, tmp_path / "b" / "copy" / "expected_logs.json")
    assert not ws.chain("eth").exists


def test_fork_in_export_rolls_back_and_gap_is_refused(real, tmp_path):
    _, _, d = real
    ws = Workspace(tmp_path / "data")
    ingest_etl(ws, d)
    # the same block 17173050 with another hash (a competing block): the store rolls back to 17173049
    out = _copy(d, tmp_path)
    other = "0x" + "ab" * 32
    for name in ("expected_blocks.json", "expected_transactions.json", "expected_token_transfers.json",
                 "expected_logs.json"):
        p = out / name
        p.write_text(p.read_text().replace("0x5699ffb9477f70ec736463b144614356eb051936da75fcccec73d648f2e91de4", other))
    rep = ingest_etl(ws, out)
    assert rep.rolled_back_to == 17173049 and rep.blocks == 1 and rep.already_stored == 1
    assert ws.connect().execute("SELECT hash FROM eth.blocks WHERE height = 17173050").fetchone() == (other,)
    assert ws.connect().execute("SELECT count(*) FROM eth.transactions").fetchone() == (298,)
    # a later export that skips a block is refused
    out2 = tmp_path / "gap"
    out2.mkdir()
    b = _rows(d / "expected_blocks.json")[1]
    b.update(number=17173052, parent_hash=other, transaction_count=0, withdrawals=[])
    (out2 / "blocks.json").write_text(json.dumps(b) + "\n")
    with pytest.raises(UserError, match="leaves a gap after the stored tip 17173050"):
        ingest_etl(ws, out2)


def test_cli_eth_etl_show_and_stats(real, tmp_path):
    from click.testing import CliRunner

    from chaintrace.cli import main

    _, _, d = real
    data = str(tmp_path / "data")
    r = CliRunner().invoke(main, ["--data", data, "ingest", "eth-etl", str(d), "--chain-id", "1", "--format", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["transfers_by_kind"]["token"] == 291
    r = CliRunner().invoke(main, ["--data", data, "stats", "--format", "json"])
    assert r.exit_code == 0, r.output
    st = json.loads(r.output)["chains"]["eth"]
    assert st["tip_height"] == 17173050 and st["rows"]["transactions"] == 298 and st["assets"] >= 70
    tx = "0xeb107a40ba73a50c79a9f2026e902d758d1c5e5e211f7a7db1b294f88f118dd0"
    r = CliRunner().invoke(main, ["--data", data, "show", "tx", tx, "--format", "json"])
    assert r.exit_code == 0, r.output
    t = json.loads(r.output)
    assert t["hash"] == tx and t["value"] == "1642894143" and any(x["kind"] == "token" for x in t["transfers"])
    r = CliRunner().invoke(main, ["--data", data, "show", "tx", tx])
    assert r.exit_code == 0 and "WETH" in r.output
    a = "0x6b75d8af000000e20b7a7ddf000ba900b4009a80"
    r = CliRunner().invoke(main, ["--data", data, "show", "address", a, "--format", "json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert info["address"] == a and any(b["asset"] == "WETH" for b in info["balances"])
