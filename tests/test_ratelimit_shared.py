"""Rate limits are global to the server: the counters of SharedRateLimiter live in a file every worker
process maps, so two processes (and `chaintrace serve --workers 2`) together admit exactly the limit."""
from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from chaintrace.api.keys import create_key
from chaintrace.api.ratelimit import SharedRateLimiter
from tests.screen_server import Server


def _hammer(path: str, key_id: str, n: int, limit: int, q) -> None:
    lim = SharedRateLimiter(path)
    q.put(sum(lim.hit(key_id, limit, 3600)[0] for _ in range(n)))


def test_two_processes_share_one_limit(tmp_path):
    path = str(tmp_path / "ratelimit.bin")
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_hammer, args=(path, "k1", 300, 400, q)) for _ in range(2)]
    for p in procs:
        p.start()
    allowed = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
    assert sum(allowed) == 400  # 600 requests against a limit of 400: exactly 400 admitted across processes
    lim = SharedRateLimiter(path)
    assert lim.peek("k1", 400, 3600)["remaining"] == 0
    assert lim.peek("other", 5, 3600)["remaining"] == 5  # keys do not share counters
    ok, h = lim.hit("other", 5, 3600)
    assert ok and h["RateLimit-Remaining"] == "4"


def test_window_rolls_over_and_slots_are_reused(tmp_path):
    now = [1000.0]
    lim = SharedRateLimiter(tmp_path / "rl.bin", clock=lambda: now[0], slots=8)
    assert [lim.hit("a", 2, 10)[0] for _ in range(3)] == [True, True, False]
    ok, h = lim.hit("a", 2, 10)
    assert not ok and 1 <= int(h["Retry-After"]) <= 10
    now[0] += 10  # next window
    assert lim.hit("a", 2, 10)[0]
    # more keys than slots: expired slots are reused, each live key keeps its own count
    for i in range(20):
        now[0] += 10
        assert [lim.hit(f"k{i}", 1, 10)[0] for _ in range(2)] == [True, False]


@pytest.fixture(scope="module")
def served2(tmp_path_factory):
    from tests.screen_fixtures import simulated_hack

    from chaintrace import intel

    ws, _ = simulated_hack(tmp_path_factory.mktemp("rl2"), txs=1500, seed=3)
    srv = Server(ws.path, "--workers", "2", registry=intel.registry.as_registry(ws).path)
    yield ws, srv
    srv.stop()


def test_limit_is_global_with_two_workers(served2):
    ws, srv = served2
    key = create_key(ws, "screener", "limited2", limit="25/3600")["key"]

    def one(i: int) -> int:
        # a fresh connection per request: the kernel spreads them over both worker processes
        path = "/api/v1/address/0x" + f"{i:040x}" if i % 2 else "/v1/screen/address/btc/1BoatSLRHtKNngkdXEeobR76b53LETtpyT"
        return httpx.get(srv.url + path, headers={"X-API-Key": key}, timeout=60).status_code

    with ThreadPoolExecutor(8) as ex:
        codes = list(ex.map(one, range(80)))
    assert codes.count(200) == 25 and codes.count(429) == 55
