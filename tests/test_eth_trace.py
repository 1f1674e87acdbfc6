"""Ethereum tracing: exact hand-computed results per policy, gas to fees, swap conversion, value conservation,
numba kernel == pure-Python reference on a synthetic chain, the CLI, and the report schema."""
from __future__ import annotations

import json

import pytest

from chaintrace.chains.eth import ingest_etl
from chaintrace.chains.eth.synth import address, write_export, write_tagpack
from chaintrace.errors import UserError
from chaintrace.store.workspace import Workspace
from chaintrace.trace import TraceRequest, trace
from chaintrace.trace.report import check_invariant
from tests.eth.export import Export, addr

E = 10**18
POLICIES = ("haircut", "poison", "seniority", "fifo", "lifo")


def tagpack(path, exchanges: dict[str, str]):
    import yaml

    path.write_text(yaml.safe_dump({"title": "test exchanges", "creator": "tests", "currency": "ETH",
                                    "category": "exchange", "confidence": "ownership", "is_public": True,
                                    "tags": [{"address": addr(n), "label": lbl} for n, lbl in exchanges.items()]}))
    return str(path)


@pytest.fixture
def simple(tmp_path):
    """V -> T 10 (the hack); T -> A 4; C -> T 10 (clean); T -> B 8; B -> X 8 (X: an exchange)."""
    ex = Export()
    ex.block()
    hack = ex.tx("V", "T", 10 * E)
    ex.tx("T", "A", 4 * E)
    ex.tx("C", "T", 10 * E)
    ex.block()
    ex.tx("T", "B", 8 * E)
    ex.tx("B", "X", 8 * E)
    ws = Workspace(tmp_path / "data")
    ingest_etl(ws, ex.write(tmp_path / "export"))
    return ws, hack, tagpack(tmp_path / "tags.yaml", {"X": "Exchange X"})


@pytest.mark.parametrize("policy,sink,t_left", [
    ("haircut", 3 * E, 3 * E),    # T: 6 tainted of 16 -> 8 * 6/16 = 3 leave
    ("poison", 3 * E, 3 * E),     # amounts are the conserved haircut shares
    ("seniority", 6 * E, 0),      # tainted first out
    ("fifo", 6 * E, 0),           # the 6 left of the (older) tainted credit go first
    ("lifo", 0, 6 * E),           # the newest (clean) 10 go first
])
def test_policies_exact(simple, policy, sink, t_left):
    ws, hack, tags = simple
    r = trace(ws, [hack], chain="eth", policy=policy, tags=[tags], registry=False, min_value=0)
    assert r.total_seeded == {"ETH": 10 * E}
    assert sum(s.amount for s in r.sinks) == sink
    if sink:
        s = r.sinks[0]
        assert (s.address, s.label, s.category, s.hops) == (addr("X"), "Exchange X", "exchange", 2)
    held = {h.address: h.amount for h in r.holdings}
    assert held.get(addr("A")) == 4 * E
    assert held.get(addr("T"), 0) == t_left
    check_invariant(r)
    if sink:
        # the path: seed credit to T, then T -> B, then B -> X
        p = r.paths[0]
        assert [st.address for st in p.steps] == [addr("T"), addr("B"), addr("X")]
        assert [st.amount for st in p.steps][-1] == sink


def test_address_seed_since_until_and_errors(simple):
    ws, hack, tags = simple
    r = trace(ws, [addr("T")], chain="eth", policy="haircut", tags=[tags], registry=False, min_value=0)
    # T received 10 (hack) + 10 (clean C) : everything it received is seeded
    assert r.total_seeded["ETH"] == 20 * E
    r = trace(ws, [addr("T")], chain="eth", policy="haircut", until="0", registry=False, min_value=0)
    assert r.total_seeded["ETH"] == 20 * E and not r.sinks  # block 1 is not followed
    with pytest.raises(UserError, match="not in the eth store"):
        trace(ws, ["0x" + "ab" * 20], chain="eth", registry=False)
    with pytest.raises(UserError, match="expected an address"):
        trace(ws, ["nonsense"], chain="eth", registry=False)
    with pytest.raises(UserError, match="not supported"):
        trace(ws, [hack], chain="eth", policy="tiho", registry=False)
    with pytest.raises(UserError, match="received nothing"):
        trace(ws, [addr("V")], chain="eth", registry=False)


def test_thresholds_and_max_hops(simple):
    ws, hack, tags = simple
    r = trace(ws, [hack], chain="eth", policy="haircut", tags=[tags], registry=False, max_hops=0, min_value=0)
    stopped = {(s.reason, s.address): s.amount for s in r.stopped}
    assert stopped[("max_hops", addr("A"))] == 4 * E and stopped[("max_hops", addr("B"))] == 3 * E
    assert not r.sinks
    r = trace(ws, [hack], chain="eth", policy="haircut", tags=[tags], registry=False, min_value=int(3.5 * E))
    assert {(s.reason, s.address) for s in r.stopped} == {("below_threshold", addr("B"))}
    check_invariant(r)
    r = trace(ws, [hack], chain="eth", policy="haircut", registry=False, max_txs=1, min_value=0)
    assert r.partial and all(s.reason == "max_txs" for s in r.stopped) and not r.holdings
    check_invariant(r)


def test_gas_from_tainted_balance_goes_to_fees(tmp_path):
    gwei = 10**9
    ex = Export(base_fee=gwei)
    ex.block()
    hack = ex.tx("V", "T", 10 * E, gas_used=21000)
    ex.tx("T", "A", 5 * E, gas_used=21000, gas_price=2 * gwei)  # 21000 burned + 21000 tip, from T
    ws = Workspace(tmp_path / "data")
    ingest_etl(ws, ex.write(tmp_path / "x"))
    con = ws.connect()
    assert con.execute("SELECT fee, burned, tip FROM eth.transactions WHERE from_address = ?",
                       [addr("T")]).fetchone() == (42000 * gwei, 21000 * gwei, 21000 * gwei)
    for policy in POLICIES:
        r = trace(ws, [hack], chain="eth", policy=policy, registry=False, min_value=0)
        assert r.fees["ETH"] == 42000 * gwei, policy
        held = {h.address: h.amount for h in r.holdings}
        assert held == {addr("A"): 5 * E, addr("T"): 5 * E - 42000 * gwei}, policy


def test_swap_converts_taint_across_assets(tmp_path):
    ex = Export()
    ex.block()
    ex.tx("C", "POOL", 100 * E)  # the pool's (clean) ETH
    hack = ex.tx("V", "USDX", 0, tokens=[("USDX", "V", "T", 1000)])
    # T sells 400 USDX to the pool, which pays 3 ETH by an internal call
    swap = ex.tx("T", "POOL", 0, tokens=[("USDX", "T", "POOL", 400)], calls=[("POOL", "T", 3 * E, [0], None)])
    ex.tx("T", "D", 2 * E)
    ws = Workspace(tmp_path / "data")
    ingest_etl(ws, ex.write(tmp_path / "x"))
    sym = addr("USDX")  # no symbol known: the asset is named by its contract address
    for policy in POLICIES:
        r = trace(ws, [hack], chain="eth", policy=policy, registry=False, min_value=0)
        check_invariant(r)
        conv = r.stats["conversions"]
        assert len(conv) == 1 and conv[0]["txid"] == swap, policy
        assert (conv[0]["from_asset"], conv[0]["from_amount"], conv[0]["to_asset"], conv[0]["to_amount"]) == \
            (sym, "400", "ETH", str(3 * E)), policy
        stopped = {(s.reason, s.asset): s.amount for s in r.stopped}
        assert stopped[("converted", sym)] == 400
        held = {(h.address, h.asset): h.amount for h in r.holdings}
        assert held[(addr("T"), sym)] == 600
        assert (addr("POOL"), sym) not in held  # the pool is pass-through
        assert held[(addr("D"), "ETH")] == 2 * E and held[(addr("T"), "ETH")] == 1 * E
        assert r.total_seeded == {"ETH": 3 * E, sym: 1000}
        seeds = {s.kind for s in r.seeds}
        assert seeds == {"tx", "conversion"}


def test_failed_tx_and_reverted_call_move_nothing(tmp_path):
    ex = Export()
    ex.block()
    hack = ex.tx("V", "T", 10 * E)
    ex.tx("T", "A", 5 * E, status=0)  # failed: no value moves
    ex.tx("T", "M", 2 * E, calls=[("M", "D", 2 * E, [0], "Reverted")])  # M keeps it, D gets nothing
    ws = Workspace(tmp_path / "data")
    ingest_etl(ws, ex.write(tmp_path / "x"))
    r = trace(ws, [hack], chain="eth", policy="fifo", registry=False, min_value=0)
    held = {h.address: h.amount for h in r.holdings}
    assert held == {addr("T"): 8 * E, addr("M"): 2 * E}


@pytest.fixture(scope="module")
def synth_ws(tmp_path_factory):
    d = tmp_path_factory.mktemp("synth")
    s = write_export(d / "export", n_transfers=12_000, n_accounts=600, n_tokens=3, n_exchanges=10, seed=3)
    write_tagpack(d / "tags.yaml", s["tagpack"])
    ws = Workspace(d / "data")
    ingest_etl(ws, d / "export")
    return ws, s, str(d / "tags.yaml")


def _comparable(report) -> dict:
    d = json.loads(report.to_json())
    for k in ("engine", "load_graph_s", "sinks_s", "propagate_s", "report_s", "seconds"):
        d["stats"].pop(k, None)
    return d


@pytest.mark.parametrize("policy", POLICIES)
def test_numba_kernel_equals_python_reference(synth_ws, policy):
    from chaintrace.trace import get_tracer
    from chaintrace.trace.eth import trace_eth

    ws, s, tags = synth_ws
    seeds = [s["thief"], str(address(12)), str(address(13)), str(address(14))]
    get_tracer("eth")
    req = TraceRequest(seeds=seeds, policy=policy, min_value=10**15, tag_files=[tags], registry=False, max_hops=40)
    from chaintrace.progress import NULL

    fast = trace_eth(ws, req, NULL, engine="numba")
    slow = trace_eth(ws, req, NULL, engine="python")
    assert fast.stats["engine"] == "numba" and slow.stats["engine"] == "python"
    check_invariant(fast)
    assert _comparable(fast) == _comparable(slow)
    assert fast.stats["transfers_tainted"] > 100 and fast.sinks
    if policy != "poison":
        assert fast.stats["n_conversions"] > 0  # the seeded accounts swap on the pool


@pytest.mark.parametrize("mode", ["clean-first", "taint-first"])
def test_fifo_entry_modes_agree_with_reference(synth_ws, mode, monkeypatch):
    import chaintrace.trace.eth as T
    from chaintrace.progress import NULL
    from chaintrace.trace import get_tracer

    get_tracer("eth")
    monkeypatch.setattr(T, "ENTRY_MODE", mode)
    ws, s, tags = synth_ws
    req = TraceRequest(seeds=[s["thief"], str(address(12))], policy="fifo", min_value=0, tag_files=[tags],
                       registry=False)
    fast, slow = T.trace_eth(ws, req, NULL, engine="numba"), T.trace_eth(ws, req, NULL, engine="python")
    assert _comparable(fast) == _comparable(slow)
    assert fast.policy["params"]["entry_mode"] == mode


def test_trace_cli_json_text_and_explain(synth_ws):
    from click.testing import CliRunner

    from chaintrace.cli import main

    ws, s, tags = synth_ws
    args = ["--data", str(ws.path), "trace", "--chain", "eth", "--from", s["hack_tx"], "--policy", "haircut",
            "--tags", tags, "--no-registry"]
    res = CliRunner().invoke(main, [*args, "--format", "json", "--explain", s["exchanges"][0]])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["chain"] == "eth" and d["total_seeded"]["ETH"] == str(50_000 * E)
    assert d["explain"][0]["address"] == s["exchanges"][0]
    total = sum(int(x["amount"]) for k in ("sinks", "holdings", "stopped") for x in d[k] if x["asset"] == "ETH")
    assert total + int(d["fees"]["ETH"]) == 50_000 * E
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "Exchange" in res.output
    # account-chain words and the real counts (issue 12): no UTXO wording, no "0 transactions processed"
    assert "unspent" not in res.output and "tainted outputs" not in res.output
    st = d["stats"]
    assert f"{st['transactions_with_taint']:,} transactions carried taint" in res.output
    assert st["transactions_with_taint"] > 0 and f"from {d['tags']['tags_loaded']:,} tags" in res.output
    res = CliRunner().invoke(main, [*args, "--explain", s["exchanges"][0], "--chain", "ethereum"])
    assert res.exit_code == 0, res.output
    assert f"explain {s['exchanges'][0]}:" in res.output and "None" not in res.output
    bad = CliRunner().invoke(main, ["--data", str(ws.path), "trace", "--chain", "eth", "--from", "0x1234"])
    assert bad.exit_code == 2 and "expected an address" in bad.output


def test_tokens_sharing_a_symbol_stay_apart(tmp_path):
    """Two contracts both calling themselves "USDT" (the real one and a copy): amounts are keyed by contract
    address, never summed together; the symbol is a label shown beside the address."""
    from chaintrace.report.html import render_html
    from chaintrace.report.text import to_text

    ex = Export()
    ex.block()
    hack = ex.tx("V", "T", 0, tokens=[("REAL", "V", "T", 5_000_000), ("FAKE", "V", "T", 70_000_000_000)])
    ex.tx("T", "X", 0, tokens=[("REAL", "T", "X", 3_000_001), ("FAKE", "T", "X", 69_999_999_999)])
    out = ex.write(tmp_path / "x")
    (out / "tokens.csv").write_text(
        "address,symbol,name,decimals,total_supply,block_number\n"
        f"{addr('REAL')},USDT,Tether USD,6,1000000000000,1\n"
        f"{addr('FAKE')},USDT,Tether USD,6,1000000000000000,1\n")
    ws = Workspace(tmp_path / "data")
    ingest_etl(ws, out)
    real, fake = addr("REAL"), addr("FAKE")
    for policy in POLICIES:
        r = trace(ws, [hack], chain="eth", policy=policy, tags=[tagpack(tmp_path / "t.yaml", {"X": "Exchange X"})],
                  registry=False, min_value=0)
        check_invariant(r)
        assert r.total_seeded == {real: 5_000_000, fake: 70_000_000_000}, policy
        assert "USDT" not in r.total_seeded and "USDT" not in r.fees
        assert r.assets[real] == {"decimals": 6, "address": real, "symbol": "USDT"}
        assert r.assets[fake]["symbol"] == "USDT" and r.assets[fake]["address"] == fake
        sunk = {s.asset: s.amount for s in r.sinks}
        assert sunk == {real: 3_000_001, fake: 69_999_999_999}, policy
        held = {(h.address, h.asset): h.amount for h in r.holdings}
        assert held == {(addr("T"), real): 1_999_999, (addr("T"), fake): 1}, policy
        d = json.loads(json.dumps(r.to_dict()))
        assert {k: int(v) for k, v in d["total_seeded"].items()} == r.total_seeded
        assert d["assets"][fake]["symbol"] == "USDT"
    assert r.asset_label(real) == f"USDT ({real})" and r.asset_label("ETH") == "ETH"
    text = to_text(r, width=400)
    assert f"USDT ({fake})" in text and f"USDT ({real})" in text  # path titles: symbol beside the contract
    page = render_html([r])
    assert f"USDT ({fake})" in page and f"USDT ({real})" in page
