"""A simulated exchange hack, ingested and indexed for screening (shared by the screening tests)."""
from __future__ import annotations

import struct
from pathlib import Path

import pyarrow.parquet as pq

from chaintrace.store.workspace import Workspace


def simulated_hack(root: Path, txs: int = 4000, seed: int = 11, scenario: str = "fan-out") -> tuple[Workspace, Path]:
    """Simulate, ingest through the real block-file parser, import the simulator's TagPack (the attacker's
    address carries ``abuse: service_hack``) and build the exposure index."""
    import chaintrace
    from chaintrace import intel
    from chaintrace.screen import build_index, load_config
    from chaintrace.sim import simulate_btc

    out = root / "sim"
    simulate_btc(out, txs=txs, seed=seed, scenario=scenario)
    ws = Workspace(root / "data")
    intel.registry.bind(ws, root / "registry")  # this module's own intelligence registry
    chaintrace.ingest_block_files(ws, [out])
    intel.import_paths(ws, "tagpack", [out / "tags.yaml"])
    build_index(ws, load_config())
    return ws, out


def innocent_deposits(ws: Workspace, sim: Path, exchange_entity: int, exclude_txids: set[str]) -> list[str]:
    """txid:vout of deposits paid by ordinary users into deposit addresses of one exchange."""
    addrs = pq.read_table(sim / "addresses.parquet").to_pylist()
    launderer = {a["address"] for a in addrs if a["role"] in ("launderer", "launderer_clean", "attacker")}
    dep = [a["address"] for a in addrs if a["role"] == "deposit" and a["entity"] == exchange_entity]
    con = ws.connect()
    rows = con.execute(
        "SELECT o.txid, o.n, list(DISTINCT i.address) FROM btc.outputs o JOIN btc.outputs i ON i.spending_txid = o.txid "
        "WHERE o.address IN (SELECT unnest(?::VARCHAR[])) GROUP BY o.txid, o.n ORDER BY o.txid, o.n",
        [dep]).fetchall()
    return [f"{t}:{n}" for t, n, payers in rows if t not in exclude_txids and not (set(payers) & launderer)]


def first_blocks(src: Path, dst: Path, n: int) -> None:
    """Copy the first `n` block records of a blk*.dat file (magic, length, block)."""
    data = src.read_bytes()
    pos = 0
    for _ in range(n):
        (size,) = struct.unpack_from("<I", data, pos + 4)
        pos += 8 + size
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data[:pos])


def n_blocks(src: Path) -> int:
    """The number of block records in a blk*.dat file."""
    data = src.read_bytes()
    pos = n = 0
    while pos + 8 <= len(data):
        (size,) = struct.unpack_from("<I", data, pos + 4)
        pos += 8 + size
        n += 1
    return n
