"""The columnar Ethereum ingest: numba column kernels against Python's own parsing, and an ethereum-etl export
of call-trace corner cases (nested reverts, delegatecalls, internal creates, selfdestructs, trace-address
ordering, transaction_index-only frames, issuance, amounts of 10**38 and more, a London-boundary batch)
ingested into exactly the transfers the model says."""
from __future__ import annotations

import json
import random

import numpy as np
import pyarrow as pa
import pytest

from chaintrace.chains.eth import columns as C
from chaintrace.chains.eth import ingest_etl
from chaintrace.errors import UserError
from chaintrace.store.workspace import Workspace


def test_parse_amounts_is_exact():
    rng = random.Random(5)
    vals = [str(rng.randrange(10 ** rng.randint(1, 38))) for _ in range(3000)]
    vals += ["0", "000", "007", str(2**64 - 1), str(2**64), str(2**126), str(10**38 - 1), "0" * 60 + "42"]
    lo, hi, big, text, bad = C.parse_amounts(pa.array(vals))
    assert not len(bad) and not big.any() and text is None
    assert [(int(h) << 64) | int(x) for x, h in zip(lo.tolist(), hi.tolist())] == [int(v) for v in vals]
    edge = [str(10**38), "000" + str(2**200), str(2**256 - 1), str(2**256), "-1", "", None, "1e5", " 5", "٣"]
    lo, hi, big, text, bad = C.parse_amounts(pa.array(edge))
    assert big.tolist()[:4] == [True, True, True, True]
    assert text.to_pylist()[:3] == [str(10**38), str(2**200), str(2**256 - 1)]
    assert bad.tolist() == [3, 4, 5, 6, 7, 8, 9]


def test_hex_words_round_trip_and_errors():
    rng = random.Random(7)
    addrs = ["0x" + "%040x" % rng.getrandbits(160) for _ in range(500)]
    mixed = [a[:2] + a[2:].upper() for a in addrs[:50]]
    words, valid, bad = C.hex_words(pa.array(addrs + mixed + [None]), 20, True)
    assert bad == -1 and valid.tolist() == [True] * 550 + [False]
    assert C.words_to_strings(words[:550], 20).to_pylist() == addrs + addrs[:50]
    assert C.hex_words(pa.array(addrs[:3] + [None]), 20, False)[2] == 3
    assert C.hex_words(pa.array([addrs[0], addrs[1][:-1], addrs[2]]), 20, True)[2] == 1
    assert C.hex_words(pa.array([addrs[0], "0x" + "g" * 40]), 20, True)[2] == 1
    h = "0x" + "%064x" % rng.getrandbits(256)
    w, _, _ = C.hex_words(pa.array([h.upper().replace("0X", "0x")]), 32, False)
    assert C.words_to_strings(w, 32).to_pylist() == [h]
    data, bad = C.hex_bytes(pa.array(["0x", None, "0xAbCd00", "0x" + "ff" * 300]))
    assert bad == -1 and data.to_pylist() == [b"", b"", b"\xab\xcd\x00", b"\xff" * 300]
    assert C.hex_bytes(pa.array(["0x00", "0x123"]))[1] == 1


def test_key_index_assigns_ids_by_first_appearance_and_grows():
    rng = np.random.default_rng(3)
    n = 50_000
    keys = rng.integers(0, 2**63, (n, 3), dtype=np.int64).astype(np.uint64)
    occ = np.concatenate([keys, keys[::-1], keys[:100]])  # every key three times (the first 100) or twice
    order_key = np.concatenate([np.arange(n) * 2 + 1, np.arange(n)[::-1] * 2, np.full(100, -1)])
    idx = C.KeyIndex(3, keys[:10])  # ten known keys: ids 0..9
    ids, first = idx.assign(occ, np.ones(len(occ), bool), order_key)
    assert idx.n == n and len(first) == n - 10
    assert (ids[:10] == np.arange(10)).all()
    # new keys are numbered by their smallest order key: key j appears at 2j+1 and 2j, the first 100 at -1 too
    smallest = np.where(np.arange(n) < 100, -1, 2 * np.arange(n))
    want = np.empty(n, np.int64)
    new = np.arange(10, n)
    want[new[np.argsort(smallest[new], kind="stable")]] = np.arange(10, n)
    want[:10] = np.arange(10)
    assert (ids[:n] == want).all() and (ids[n:2 * n] == want[::-1]).all()
    assert (idx.lookup(keys, np.ones(n, bool)) == want).all()
    assert idx.lookup(keys[:1] + np.uint64(1), np.ones(1, bool))[0] == -1
    assert C.KeyIndex(3, np.concatenate([keys[:5], keys[2:3]])).duplicate == 5


def _h(n: int, width: int = 64) -> str:
    return "0x" + format(n, "x").zfill(width)


def _a(n: int) -> str:
    return _h(0xA0000 + n, 40)


def _write_edge_export(d, london_boundary: bool = False):
    blocks = [
        {"number": 100, "hash": _h(0xB100), "parent_hash": _h(0xB099), "miner": _a(99), "timestamp": 1000,
         "gas_used": 1, "gas_limit": 10, "transaction_count": 4, "base_fee_per_gas": None if london_boundary else 3,
         "difficulty": 5, "total_difficulty": 50, "size": 100, "withdrawals": []},
        {"number": 101, "hash": _h(0xB101), "parent_hash": _h(0xB100), "miner": _a(98).upper().replace("0X", "0x"),
         "timestamp": 1012, "gas_used": 1, "gas_limit": 10, "transaction_count": 1, "base_fee_per_gas": 7,
         "difficulty": 5, "total_difficulty": 55, "size": 100,
         "withdrawals": [{"index": 3, "validator_index": 9, "address": _a(50), "amount": 123456789},
                         {"index": 4, "validator_index": 9, "address": _a(51), "amount": 1}]},
    ]

    def tx(h, bn, idx, frm, to, value, status=None, gas=None, eff=None):
        return {"hash": h, "nonce": idx, "block_number": bn, "transaction_index": idx, "from_address": frm,
                "to_address": to, "value": value, "gas": 100000, "gas_price": 10, "input": "0xAbCd" if idx == 1 else "0x",
                "receipt_status": status, "receipt_gas_used": gas, "receipt_effective_gas_price": eff,
                "transaction_type": 0}

    txs = [tx(_h(1), 100, 0, _a(1), _a(2), 5), tx(_h(2), 100, 1, _a(3), _a(4), 6), tx(_h(3), 100, 2, _a(5), None, 7),
           tx(_h(4), 100, 3, _a(6), _a(7), 10**40), tx(_h(5), 101, 0, _a(8), _a(9), 9, status=1, gas=21000, eff=12)]

    def tr(bn, th, ti, frm, to, v, tt="call", ct="call", ta="", err=None, st=None):
        return {"block_number": bn, "transaction_hash": th, "transaction_index": ti, "from_address": frm,
                "to_address": to, "value": v, "trace_type": tt, "call_type": ct, "trace_address": ta, "error": err,
                "status": st}

    traces = [
        tr(100, _h(1), 0, _a(1), _a(2), 5),
        tr(100, _h(1), 0, _a(2), _a(10), 1, ta="0"),
        tr(100, _h(1), 0, _a(10), _a(11), 1, ta="0,0", err="Reverted"),  # reverted: it and its children move nothing
        tr(100, _h(1), 0, _a(11), _a(12), 1, ta="0,0,1"),
        tr(100, _h(1), 0, _a(10), _a(13), 2, ta="0,1"),
        tr(100, _h(1), 0, _a(2), _a(14), 3, ct="delegatecall", ta="1"),  # no value between accounts
        tr(100, _h(1), 0, _a(2), _a(15), 2, tt="create", ct=None, ta="2"),  # an internal creation, in pre-order
        tr(100, _h(1), 0, _a(15), _a(16), 1, ta="2,0", st=0),  # failed by status
        tr(100, _h(1), 0, _a(2), _a(17), 4, tt="suicide", ct=None, ta="3"),
        tr(100, _h(1), 0, _a(2), _a(18), 1, ta="10"),  # after "3" (numeric, not text, order)
        tr(100, _h(1), 0, _a(2), _a(19), 0, ta="11"),  # no value
        tr(100, _h(2), 1, _a(3), _a(4), 6, err="out of gas"),  # no receipt: failed by its top-level frame
        tr(100, _h(2), 1, _a(4), _a(20), 1, ta="0"),
        tr(100, _h(3), 2, _a(5), _a(21), 7, tt="create", ct=None),  # the created contract receives the value
        tr(100, _h(3), 2, _a(21), _a(22), 3, ta="0"),
        tr(100, None, 3, _a(6), _a(7), "10000000000000000000000000000000000000000"),  # by transaction_index only
        tr(100, None, 3, _a(7), _a(23), str(2**128 + 1), ta="0"),
        tr(100, None, None, None, _a(99), 2 * 10**18, tt="reward", ct=None),
        tr(100, None, None, None, _a(24), 17, tt="genesis", ct=None),
        tr(101, _h(5), 0, _a(8), _a(9), 9),
        tr(101, None, None, None, _a(98), 10**18, tt="reward", ct=None),
    ]
    tts = [{"token_address": _h(0xC1, 40), "from_address": _a(2), "to_address": _a(30), "value": "1000",
            "transaction_hash": _h(1), "log_index": 5, "block_number": 100},
           {"token_address": _h(0xC2, 40).upper().replace("0X", "0x"), "from_address": _a(30), "to_address": _a(31),
            "value": "0", "transaction_hash": _h(1), "log_index": 2, "block_number": 100},
           {"token_address": _h(0xC1, 40), "from_address": _a(8), "to_address": _a(32), "value": str(2**200),
            "transaction_hash": _h(5), "log_index": 0, "block_number": 101}]
    d.mkdir(parents=True, exist_ok=True)
    for name, rows in (("blocks", blocks), ("transactions", txs), ("traces", traces), ("token_transfers", tts)):
        (d / f"{name}.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


EDGE_TRANSFERS = [  # (height, tx, kind, from, to, value, trace address, log index)
    (100, 0, "call", 1, 2, 5, None, None),
    (100, 0, "internal", 2, 10, 1, "0", None),
    (100, 0, "internal", 10, 13, 2, "0,1", None),
    (100, 0, "create", 2, 15, 2, "2", None),
    (100, 0, "selfdestruct", 2, 17, 4, "3", None),
    (100, 0, "internal", 2, 18, 1, "10", None),
    (100, 0, "token", 30, 31, 0, None, 2),
    (100, 0, "token", 2, 30, 1000, None, 5),
    (100, 2, "create", 5, 21, 7, None, None),
    (100, 2, "internal", 21, 22, 3, "0", None),
    (100, 3, "call", 6, 7, 10**40, None, None),
    (100, 3, "internal", 7, 23, 2**128 + 1, "0", None),
    (100, None, "reward", None, 99, 2 * 10**18, None, None),
    (100, None, "genesis", None, 24, 17, None, None),
    (101, 4, "fee_burn", 8, None, 21000 * 7, None, None),
    (101, 4, "fee_tip", 8, 98, 21000 * 5, None, None),
    (101, 4, "call", 8, 9, 9, None, None),
    (101, 4, "token", 8, 32, 2**200, None, 0),
    (101, None, "withdrawal", None, 50, 123456789 * 10**9, None, None),
    (101, None, "withdrawal", None, 51, 10**9, None, None),
    (101, None, "reward", None, 98, 10**18, None, None),
]


def _transfers(ws):
    con = ws.connect()
    rows = con.execute("""SELECT height, tx_id, kind, from_address, to_address, value, value_big, trace_address,
                                 log_index, seq FROM eth.transfers ORDER BY transfer_id""").fetchall()
    return rows, con


@pytest.mark.parametrize("batch_blocks", [1, 2000])
def test_call_trace_corner_cases_ingest_exactly(tmp_path, batch_blocks):
    d = _write_edge_export(tmp_path / "export")
    ws = Workspace(tmp_path / "data")
    rep = ingest_etl(ws, d, batch_blocks=batch_blocks)
    rows, con = _transfers(ws)
    got = [(h, t, k, None if f is None else int(f[2:], 16) - 0xA0000, None if to is None else int(to[2:], 16) - 0xA0000,
            int(v) if v is not None else int(vb), ta, li) for h, t, k, f, to, v, vb, ta, li, _ in rows]
    assert got == EDGE_TRANSFERS
    assert [r[-1] for r in rows] == [0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 0, 1, 2]
    assert rep.transfers == len(EDGE_TRANSFERS) and rep.failed_transactions == 1
    # statuses: tx 1 failed by its top-level frame; the rest succeeded (from their frames or receipts)
    assert con.execute("SELECT status FROM eth.transactions ORDER BY tx_id").fetchall() == [(1,), (0,), (1,), (1,), (1,)]
    assert con.execute("SELECT input FROM eth.transactions WHERE tx_id = 1").fetchone() == (b"\xab\xcd",)
    # addresses are numbered by first appearance (miner, senders/recipients, then transfers, per block)
    addrs = [a for (a,) in con.execute("SELECT address FROM eth.addresses ORDER BY address_id").fetchall()]
    assert addrs[:9] == [_a(i) for i in (99, 1, 2, 3, 4, 5, 6, 7, 10)] and len(addrs) == len(set(addrs)) == 25
    assert con.execute("SELECT address FROM eth.assets WHERE asset_id > 0 ORDER BY asset_id").fetchall() == \
        [(_h(0xC2, 40),), (_h(0xC1, 40),)]  # by first appearance in chain order (log 2 before log 5)
    # every transfer belongs to its transaction's range
    assert con.execute("""SELECT count(*) FROM eth.transfers_raw r JOIN eth.transactions_raw t USING (tx_id)
                          WHERE r.transfer_id NOT BETWEEN t.first_transfer_id
                                AND t.first_transfer_id + t.n_transfers - 1""").fetchone() == (0,)


def test_batch_across_the_london_fork(tmp_path):
    """A block without a base fee (pre-London) and one with it in the same batch."""
    d = _write_edge_export(tmp_path / "export", london_boundary=True)
    ws = Workspace(tmp_path / "data")
    ingest_etl(ws, d)
    assert ws.connect().execute("SELECT height, base_fee_per_gas FROM eth.blocks ORDER BY 1").fetchall() == \
        [(100, None), (101, 7)]


def test_bad_cells_name_file_and_line(tmp_path):
    d = _write_edge_export(tmp_path / "export")
    lines = (d / "traces.json").read_text().splitlines()
    rec = json.loads(lines[4])
    rec["trace_address"] = "0,x"
    lines[4] = json.dumps(rec)
    (d / "traces.json").write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=r"traces.json:5: trace_address: not a list of call indices"):
        ingest_etl(Workspace(tmp_path / "data"), d)
    # CSV: integer columns are read as integers; a bad cell is reported with its line
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    (csv_dir / "blocks.csv").write_text(
        "number,hash,parent_hash,miner,timestamp,gas_used,gas_limit,transaction_count,base_fee_per_gas\n"
        f"100,{_h(0xB100)},{_h(0xB099)},{_a(99)},1000,1,10,0,3\n"
        f"101,{_h(0xB101)},{_h(0xB100)},{_a(99)},10x2,1,10,0,3\n")
    with pytest.raises(UserError, match=r"blocks.csv:3: timestamp: expected an integer, got '10x2'"):
        ingest_etl(Workspace(tmp_path / "data2"), csv_dir)
    assert not Workspace(tmp_path / "data2").chain("eth").exists


def test_graph_names_transfers_and_accounts(tmp_path):
    """The trace report's references come from the graph arrays: hash + log index / trace address / kind /
    position, block-level issuance as block:<height>, times from the blocks."""
    from chaintrace.graph.eth import load_eth_graph

    ws = Workspace(tmp_path / "data")
    ingest_etl(ws, _write_edge_export(tmp_path / "export"))
    g = load_eth_graph(ws)
    txid, ref, tm = g.refs(np.arange(g.n_transfers))
    assert ref[:4] == [f"{_h(1)}:0", f"{_h(1)}:trace0", f"{_h(1)}:trace0.1", f"{_h(1)}:trace2"]
    assert ref[6:8] == [f"{_h(1)}:log2", f"{_h(1)}:log5"] and ref[8] == f"{_h(3)}:create"
    assert ref[12:15] == ["block:100:reward", "block:100:genesis", f"{_h(5)}:fee_burn"]
    assert txid[12] == "block:100" and txid[0] == _h(1) and tm.tolist() == [1000] * 14 + [1012] * 7
    assert g.amounts([10, 11, 17]) == [10**40, 2**128 + 1, 2**200]
    assert g.address_strings([0, -1, 1]) == [_a(99), None, _a(1)]
    assert g.address_ids([_a(1).upper().replace("0X", "0x"), _a(2), "0x" + "ab" * 20, "nonsense"]) == {_a(1): 1, _a(2): 2}
    g2 = load_eth_graph(ws)  # from the cache
    assert g2.refs([3])[1] == [ref[3]] and g2.trace_paths == g.trace_paths


def test_hex_column_keeps_lower_case_input_and_lowers_the_rest():
    low = pa.array([_h(5), _h(0xABC)])
    words, _, bad, strings = C.hex_column(low, 32, False)
    assert bad == -1 and strings is low  # no copy
    up = pa.array([_h(5), _h(0xABC).upper().replace("0X", "0x"), "0X" + _h(7)[2:]])
    _, _, bad, strings = C.hex_column(up, 32, False)
    assert bad == -1 and strings.to_pylist() == [_h(5), _h(0xABC), _h(7)]
