"""Monitoring Bitcoin end to end: the scripted Bitcoin Core RPC server produces blocks, the watcher (a real
process) ingests them with the RPC ingestor, follows watched value with the trace's policies and delivers
signed webhooks to a real HTTP sink on 127.0.0.1; reorgs retract alerts; kill -9 loses nothing."""
from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from chaintrace import intel
from chaintrace.chains.btc import ingest_rpc
from chaintrace.monitor import JsonLines, add_watchlist, list_watchlists, run_watch
from chaintrace.monitor.db import db_path
from chaintrace.store.workspace import Workspace
from tests import btcfactory as F
from tests.btc_rpc_server import RpcNode, serve, verbose_from_raw
from tests.monitor_sinks import WebhookSink, free_port, start_watcher, stop

SECRET = "test-secret"
COIN = 100_000_000
FEE = 10_000


class Scene:
    """A regtest chain: block 1 pays 50 BTC to the thief; the node serves it; the store holds it."""

    def __init__(self, tmp: Path):
        self.c = F.Chain()
        self.thief_cb = self.c.add(miner="thief")[1]
        self.c.add()
        self.node = RpcNode(self.chain_dict(), chain="regtest")
        self.srv, url = serve(self.node)
        self.url = url.replace("http://", "http://rpcuser:rpcpass@")
        self.data = tmp / "data"
        self.ws = Workspace(self.data)
        ingest_rpc(self.ws, self.url, from_height=1)
        tags = tmp / "exchange.yaml"
        tags.write_text(f"""title: test exchange
creator: chaintrace tests
currency: BTC
confidence: ownership
tags:
  - address: {F.p2wpkh("deposit")}
    label: Exchange A
    actor: exchange_a
    category: exchange
  - address: {F.p2wpkh("mixer")}
    label: Mixer M
    category: mixing_service
""")
        intel.import_paths(self.ws, "tagpack", [tags])

    def chain_dict(self, blocks=None) -> dict:
        return {h + 1: verbose_from_raw(b, h + 1) for h, b in enumerate(blocks or self.c.blocks)}

    def publish(self, blocks=None) -> None:
        self.node.set_chain(self.chain_dict(blocks))

    def close(self) -> None:
        self.srv.shutdown()


@pytest.fixture
def scene(tmp_path):
    s = Scene(tmp_path)
    yield s
    s.close()


def _spend(prev: F.Tx, vout: int, outs: list[tuple[str, int]]) -> F.Tx:
    return F.Tx([(prev.txid, vout)], [(F.p2wpkh(n), v) for n, v in outs])


def test_moves_reach_exchange_propagate_and_reorg_retracts(scene, tmp_path):
    thief = F.p2wpkh("thief")
    add_watchlist(scene.ws, "hack", "btc", addresses=[thief], case_id="CASE-7")
    sink = WebhookSink(SECRET)
    log = open(tmp_path / "watcher.log", "wb")
    p = start_watcher(scene.data, "--btc-rpc", scene.url, "--webhook", sink.url, "--secret", SECRET,
                      "--jsonl", str(tmp_path / "alerts.jsonl"), "--interval", "0.2", "--format", "json", log=log)
    try:
        theft = _spend(scene.thief_cb, 0, [("hop1", 30 * COIN), ("deposit", 20 * COIN - FEE)])
        scene.c.add([theft])
        scene.publish()
        sink.wait(lambda s: s.alerts("service"), timeout=60)  # raises when no alert comes
        moved = sink.alerts("moved")[0]
        assert moved["txid"] == theft.txid[::-1].hex() and moved["amount"] == str(50 * COIN)
        assert moved["from"][0]["address"] == thief and moved["height"] == 3
        to = {d["address"]: d for d in moved["to"]}
        assert to[F.p2wpkh("hop1")]["amount"] == str(30 * COIN) and to[F.p2wpkh("hop1")]["followed"] is True
        assert to[F.p2wpkh("deposit")]["followed"] == "sink"
        # value conserved: outputs + fee == what moved
        assert sum(int(d["amount"]) for d in moved["to"]) + int(moved["fee"]) == 50 * COIN
        fr = sink.alerts("service")[0]["freeze_request"]
        assert fr["exchange"] == "Exchange A" and fr["deposit_address"] == F.p2wpkh("deposit")
        assert fr["amount"] == str(20 * COIN - FEE) and fr["txid"] == moved["txid"] and fr["case_id"] == "CASE-7"
        ev = json.loads(Path(fr["evidence"]).read_text())
        assert ev["paths"][0][0]["address"] == thief
        assert all(r["valid"] for r in sink.received)
        assert {r["headers"]["X-Chaintrace-Dedup-Key"] for r in sink.received} == \
            {r["body"]["dedup_key"] for r in sink.received}

        # the derived output moves on: taint propagated (haircut over 30 BTC - fee, all tainted)
        hop1 = (theft, 0)
        onward = _spend(hop1[0], 0, [("hop2", 10 * COIN), ("mixer", 20 * COIN - FEE)])
        before_reorg = list(scene.c.blocks)
        scene.c.add([onward])
        scene.publish()
        sink.wait(lambda s: [a for a in s.alerts("moved") if a["height"] == 4])
        sink.wait(lambda s: s.alerts("mixer_bridge"))
        m4 = [a for a in sink.alerts("moved") if a["height"] == 4][0]
        assert m4["amount"] == str(30 * COIN) and m4["from"][0]["ref"] == f"{theft.txid[::-1].hex()}:0"
        mixer = sink.alerts("mixer_bridge")[0]
        assert mixer["service"]["name"] == "Mixer M" and "freeze_request" not in mixer

        # reorg: block 4 is replaced by two blocks without the onward spend
        branch = list(before_reorg)
        c2 = F.Chain()
        c2.blocks, c2.hashes, c2.time = list(branch), [F.GENESIS] + [F.block_hash(b) for b in branch], scene.c.time
        c2.add(tag=b"alt1")
        c2.add(tag=b"alt2")
        scene.publish(c2.blocks)
        sink.wait(lambda s: len(s.alerts("retracted")) >= 2)
        retracted = {a["retracts"] for a in sink.alerts("retracted")}
        assert m4["dedup_key"] in retracted and mixer["dedup_key"] in retracted
        assert moved["dedup_key"] not in retracted
        # the spent output is watched again after the reorg
        time.sleep(0.5)
        w = list_watchlists(scene.ws)[0]
        assert w["retracted"] == 2 and w["outputs"] == 1 and w["amount"] == 30 * COIN
        lines = [json.loads(x) for x in (tmp_path / "alerts.jsonl").read_text().splitlines()]
        assert {a["dedup_key"] for a in lines} == {a["dedup_key"] for a in sink.alerts()}
    finally:
        stop(p)
        sink.stop()


def test_kill_9_between_detection_and_delivery(scene, tmp_path):
    add_watchlist(scene.ws, "hack", "btc", addresses=[F.p2wpkh("thief")])
    port = free_port()  # nothing listens here yet: deliveries fail and stay in the outbox
    url = f"http://127.0.0.1:{port}/hook"
    args = ("--btc-rpc", scene.url, "--webhook", url, "--secret", SECRET, "--interval", "0.2")
    p = start_watcher(scene.data, *args)
    try:
        scene.c.add([_spend(scene.thief_cb, 0, [("deposit", 50 * COIN - FEE)])])
        scene.publish()
        deadline = time.time() + 60
        pending = []
        while time.time() < deadline and len(pending) < 2:
            time.sleep(0.1)
            if db_path(scene.ws).exists():
                with sqlite3.connect(db_path(scene.ws)) as con:
                    pending = con.execute("SELECT dedup_key FROM outbox WHERE delivered IS NULL").fetchall()
        assert len(pending) == 2  # moved + service, detected, not delivered
        p.send_signal(signal.SIGKILL)
        p.wait()
    finally:
        stop(p)
    sink = WebhookSink(SECRET, port=port)
    p = start_watcher(scene.data, *args)
    try:
        sink.wait(lambda s: len(s.received) >= 2)
        time.sleep(1.5)  # would a repeat arrive?
        keys = [r["body"]["dedup_key"] for r in sink.received]
        assert sorted(keys) == sorted(k for (k,) in pending) and all(r["valid"] for r in sink.received)
        with sqlite3.connect(db_path(scene.ws)) as con:
            assert con.execute("SELECT count(*) FROM outbox WHERE delivered IS NULL").fetchone()[0] == 0
    finally:
        stop(p)
        sink.stop()


def test_dormant_funds_woke_and_library_run(scene, tmp_path):
    add_watchlist(scene.ws, "old", "btc", addresses=[F.p2wpkh("thief")], dormant_days=0.001)
    w = list_watchlists(scene.ws)[0]
    assert w["since_height"] == 2
    # the first watch starts with no activity time: a spend records it, the next one measures dormancy
    scene.c.add([_spend(scene.thief_cb, 0, [("thief", 50 * COIN - FEE)])])
    scene.publish()
    out = tmp_path / "a.jsonl"
    st = run_watch(scene.ws, btc_rpc=scene.url, channels=[JsonLines(str(out))], once=True)
    assert st.alerts == 1 and st.delivered == 1 and st.pending == 0
    prev = scene.c.blocks[-1]
    tx = F.Tx([(F.block_hash(prev) and _txid_of(prev, 1), 0)], [(F.p2wpkh("x"), 50 * COIN - 2 * FEE)])
    scene.c.add([tx])
    scene.publish()
    st = run_watch(scene.ws, btc_rpc=scene.url, channels=[JsonLines(str(out))], once=True)
    kinds = [json.loads(x)["kind"] for x in out.read_text().splitlines()]
    assert kinds == ["moved", "moved", "woke"]
    woke = json.loads(out.read_text().splitlines()[-1])
    assert woke["dormant_days"] >= 0.001 and woke["address"] == F.p2wpkh("thief")


def _txid_of(raw_block: bytes, index: int) -> bytes:
    from tests.btc_rpc_server import verbose_from_raw as v

    return bytes.fromhex(v(raw_block, 0)["tx"][index]["txid"])[::-1]


def test_trace_holdings_become_watched_outputs_with_their_taint(scene, tmp_path):
    from chaintrace.trace import trace

    # the thief pays 20 BTC to a clean output and keeps 30 BTC: trace, then watch the holdings
    split = _spend(scene.thief_cb, 0, [("stash", 30 * COIN), ("thief2", 20 * COIN - FEE)])
    scene.c.add([split])
    scene.publish()
    ingest_rpc(scene.ws, scene.url)
    rep = trace(scene.ws, [F.p2wpkh("thief")], policy="fifo", registry=False)
    path = tmp_path / "report.json"
    rep.write_json(path)
    w = add_watchlist(scene.ws, "from-trace", "btc", from_trace=path)
    assert w["policy"] == "fifo" and w["outputs"] == 2 and w["amount"] == 50 * COIN - FEE
    # stash (30 BTC, all traced) is merged with a clean coinbase: FIFO puts the traced satoshis first
    clean_cb = scene.c.add(miner="clean")[1]
    merge = F.Tx([(split.txid, 0), (clean_cb.txid, 0)], [(F.p2wpkh("a"), 40 * COIN), (F.p2wpkh("b"), 40 * COIN - FEE)])
    scene.c.add([merge])
    scene.publish()
    out = tmp_path / "a.jsonl"
    run_watch(scene.ws, btc_rpc=scene.url, channels=[JsonLines(str(out))], once=True)
    a = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["kind"] for x in a] == ["moved"]
    assert a[0]["amount"] == str(30 * COIN) and a[0]["policy"] == "fifo"
    assert [(d["address"], d["amount"]) for d in a[0]["to"]] == [(F.p2wpkh("a"), str(30 * COIN))]
