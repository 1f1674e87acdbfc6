"""The watcher loop behind ``chaintrace watch run``.

Each round: ingest new blocks from the nodes with the existing RPC ingestors
(:func:`chaintrace.chains.btc.ingest_rpc`, :func:`chaintrace.chains.eth.ingest_eth_rpc`; they roll the store
back on a reorganisation), process the new blocks of every watched chain (:mod:`.follow_btc`,
:mod:`.follow_eth`), compare sanctions answers when the registry changed (:mod:`.sanctions`), then sleep
`interval` seconds. A delivery thread sends the outbox (:mod:`.deliver`) as soon as alerts are recorded
and retries failures with backoff.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from chaintrace.chains.jsonrpc import RpcError
from chaintrace.monitor import alerts as A
from chaintrace.monitor import db, deliver, follow_btc, follow_eth, sanctions


@dataclass
class WatchStats:
    rounds: int = 0
    alerts: int = 0
    delivered: int = 0
    failed_attempts: int = 0
    errors: list[str] = field(default_factory=list)
    pending: int = 0
    tips: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)  # seconds per working round: ingest_s, follow_s, sanctions_s

    def as_dict(self) -> dict:
        return {"rounds": self.rounds, "alerts": self.alerts, "delivered": self.delivered,
                "failed_attempts": self.failed_attempts, "pending": self.pending, "tips": self.tips,
                "errors": self.errors[-20:]}


class _Deliverer(threading.Thread):
    def __init__(self, ws, channels: dict, stats: WatchStats):
        super().__init__(daemon=True, name="chaintrace-deliver")
        self.con = db.connect(ws)
        self.channels, self.stats = channels, stats
        self.wake, self.stop = threading.Event(), threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            r = deliver.deliver_due(self.con, self.channels)
            self.stats.delivered += r["delivered"]
            self.stats.failed_attempts += r["failed"]
            nxt = deliver.next_due(self.con, self.channels)
            wait = 1.0 if nxt is None else max(0.0, min(1.0, nxt - db.now()))
            if r["delivered"] and nxt is not None and nxt <= db.now():
                continue
            self.wake.wait(wait)
            self.wake.clear()


def run_watch(ws, *, btc_rpc: str | None = None, eth_rpc: str | None = None, channels=(), interval: float = 5.0,
              once: bool = False, rounds: int | None = None, btc_cookie: str | None = None,
              registry_interval: float = 30.0, from_height: int | None = None,
              on_alert: Callable[[dict], None] | None = None, should_stop: Callable[[], bool] | None = None
              ) -> WatchStats:
    """Follow the chains and raise/deliver alerts until stopped (``once``: one round, then deliver what is
    due and return; ``rounds``: that many rounds). Node errors are recorded in the stats and retried next
    round; the outbox persists, so a restarted watcher delivers what an earlier one could not. The
    intelligence registry (service tags, sanctions answers) is checked for changes every
    `registry_interval` seconds (every round with ``once``/``rounds``), off the path of block alerts.
    `from_height` is where an empty store starts (the ingestors' ``from_height``; default: block 0)."""
    chans = {c.id: c for c in channels}
    ids = list(chans)
    stats = WatchStats()
    con = db.connect(ws)
    dl = _Deliverer(ws, chans, stats)
    dl.start()
    tags: dict[str, A.TagIndex] = {}
    clients: dict = {}
    gen = None
    checked = 0.0
    try:
        while True:
            due = time.monotonic() - checked >= registry_interval or once or rounds is not None
            if due:  # the registry (tags, sanctions) is re-read when it changed, every registry_interval s
                from chaintrace.intel.registry import generation

                checked = time.monotonic()
                g = generation(ws)
                if g != gen:
                    tags, gen = {}, g
            new = _round(ws, con, btc_rpc, eth_rpc, btc_cookie, ids, tags, stats, clients, due, from_height)
            stats.rounds += 1
            stats.alerts += len(new)
            if new:
                dl.wake.set()
            for a in new:
                if on_alert:
                    on_alert(a)
            if once or (rounds is not None and stats.rounds >= rounds) or (should_stop and should_stop()):
                break
            time.sleep(interval)
    finally:
        dl.stop.set()
        dl.wake.set()
        dl.join(30)
        if once or rounds is not None:
            r = deliver.deliver_due(con, chans)  # a last pass for what became due
            stats.delivered += r["delivered"]
            stats.failed_attempts += r["failed"]
        stats.pending = A.pending_count(con)
        con.close()
        dl.con.close()
    return stats


def _node_tip(chain: str, url: str, cookie: str | None, clients: dict) -> tuple[int, str] | None:
    """The node's best (height, hash), asked cheaply (two calls), to skip rounds with nothing new."""
    try:
        if chain == "btc":
            from chaintrace.chains.btc.rpc import RpcClient

            c = clients.setdefault(chain, RpcClient(url, cookie))
            h = c.call("getblockcount")
            return h, c.call("getblockhash", h)
        from chaintrace.chains.eth.rpc import EthRpcClient

        c = clients.setdefault(chain, EthRpcClient(url))
        b = c.call("eth_getBlockByNumber", "latest", False)
        return int(b["number"], 16), b["hash"].lower()
    except (RpcError, KeyError, TypeError, ValueError):
        return None


def _up_to_date(ws, con, chain: str, node: tuple[int, str] | None) -> bool:
    """The store's tip is the node's and the monitor has processed exactly that block."""
    if node is None or chain not in ws.chains():
        return False
    tip = ws.chain(chain).manifest.get("tip")
    if not tip or (tip["height"], tip["hash"]) != node:
        return False
    row = con.execute("SELECT height, hash FROM blocks WHERE chain = ? ORDER BY height DESC LIMIT 1",
                      (chain,)).fetchone()
    return row is not None and (row[0], row[1]) == node


def _round(ws, con, btc_rpc, eth_rpc, btc_cookie, ids, tags, stats, clients=None, sanctions_due=True,
           from_height=None) -> list[dict]:
    clients = {} if clients is None else clients
    lists = {r[0] for r in con.execute("SELECT DISTINCT chain FROM watchlists")}
    idle = set()
    for chain, url in (("btc", btc_rpc), ("eth", eth_rpc)):
        if url and chain in lists and _up_to_date(ws, con, chain, _node_tip(chain, url, btc_cookie, clients)):
            idle.add(chain)
    t0 = time.perf_counter()
    if btc_rpc and "btc" in lists and "btc" not in idle:
        from chaintrace.chains.btc import ingest_rpc

        try:
            stats.tips["btc"] = ingest_rpc(ws, btc_rpc, cookie_file=btc_cookie,
                                           from_height=from_height).tip_height
        except RpcError as e:
            stats.errors.append(f"btc: {e}")
    if eth_rpc and "eth" in lists and "eth" not in idle:
        from chaintrace.chains.eth import ingest_eth_rpc

        try:
            stats.tips["eth"] = ingest_eth_rpc(ws, eth_rpc, from_height=from_height).tip_height
        except RpcError as e:
            stats.errors.append(f"eth: {e}")
    t1 = time.perf_counter()
    new: list[dict] = []
    for chain, mod in (("btc", follow_btc), ("eth", follow_eth)):
        if chain in lists and chain in ws.chains() and chain not in idle:
            if chain not in tags:
                tags[chain] = A.TagIndex(ws, chain)
            new += mod.follow(ws, con, ids, tags[chain])
    t2 = time.perf_counter()
    if sanctions_due:
        new += sanctions.check(ws, con, ids)
    t3 = time.perf_counter()
    if len(idle) < len(lists):
        for k, v in (("ingest_s", t1 - t0), ("follow_s", t2 - t1), ("sanctions_s", t3 - t2)):
            stats.timings.setdefault(k, []).append(round(v, 4))
        if os.environ.get("CHAINTRACE_WATCH_TIMINGS"):
            print(f"round: ingest {t1 - t0:.3f}s follow {t2 - t1:.3f}s sanctions {t3 - t2:.3f}s", file=sys.stderr,
                  flush=True)
    return new
