"""Refreshing the Bitcoin exposure index after an ``ingest`` of new blocks, from the previous index.

The chain grows append-only: transactions, outputs, inputs and addresses keep their dense ids, the new
ones come after. :func:`ingest_base` finds the previous complete index of the same registry directory and
configuration (an older chain commit) and checks that it can be continued:

* the chain below its tip is the same (``chain_prefix``: a digest of the graph arrays and txid prefixes it
  was built from, compared with the same prefix of the grown chain -- a reorg, or blocks ingested below the
  old tip, changes it);
* the services where exposure stops are the same on the addresses it knew (``stop_digest``, checked by the
  caller once the addresses are mapped), and the registry facts are the same (``sources_digest``: groups, source keys and dates, services, direct facts --
  the baked answers quote them);
* each group's seed outputs among the old outputs are those it propagated (``seed_digests``).

Otherwise :func:`chaintrace.screen.index.build_index` propagates everything again and the summary says why
(``refresh.reason``). The propagation itself continues in :func:`chaintrace.screen.kernels.forward_resume`
(incoming: the old rows stand, only new transactions are followed) and
:func:`~chaintrace.screen.kernels.backward_resume` (outgoing: only transactions whose outputs' rows changed
are apportioned again); :func:`affected_addresses` marks the addresses whose precomputed answer can differ
(their rows, totals or evidence paths changed): the others' answer bytes are copied from the previous index.
The result equals a full rebuild array by array and answer byte by answer byte (tests/test_screen_refresh.py).
"""
from __future__ import annotations

import hashlib

import numpy as np
import orjson

from chaintrace.screen.config import Config
from chaintrace.screen.sources import Sources
from chaintrace.store.workspace import Workspace


def prefix_digest(g, h8_by_id: np.ndarray, n_tx: int) -> dict:
    """The chain's first `n_tx` transactions as the index sees them: counts and a digest of the graph arrays
    (CSR, values, addresses, spends) and the txid prefixes over that range."""
    n_out, n_in = int(g.tx_out[n_tx]), int(g.tx_in[n_tx])
    h = hashlib.blake2b(digest_size=16)
    for arr in (g.tx_out[:n_tx + 1], g.tx_in[:n_tx + 1], g.out_value[:n_out], g.out_addr[:n_out],
                g.out_tx[:n_out], g.in_output[:n_in], h8_by_id[:n_tx]):
        h.update(np.ascontiguousarray(arr).view(np.uint8).data)
    return {"n_tx": int(n_tx), "n_out": n_out, "n_in": n_in, "digest": h.hexdigest()}


def sources_digest(sources: Sources, detected: list[dict] | None = None) -> str:
    """Digest of everything of the registry that the index and its answers stand on (and of the `detected`
    source groups' detections, which answers quote: :mod:`chaintrace.screen.mixer_sources`)."""
    doc = [sources.groups, sources.keys, sources.key_group.tolist(), sources.key_from.tolist(),
           sorted(sources.services), sources.direct]
    if detected:
        doc.append(detected)
    return hashlib.blake2b(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS),
                           digest_size=16).hexdigest()


def older_index(root, prefix: str, tail: str, commit: int):
    """The complete index directory ``<prefix>c<commit>...<tail>`` under `root` of the newest commit below
    `commit` (the newest written among equals), or None: what a refresh after an ingest continues from."""
    cands = []
    for p in root.glob(f"{prefix}c*{tail}") if root.exists() else []:
        try:
            c = int(p.name[len(prefix) + 1:].split("-", 1)[0])
        except ValueError:
            continue
        if c < commit and (p / "DONE").exists():
            cands.append((c, p.stat().st_mtime_ns, p))
    return max(cands)[2] if cands else None


def newest_other_format(root, prefix: str, tail: str):
    """The newest complete Bitcoin index directory under `root` of this registry and configuration (`tail`)
    written in another index format than `prefix`'s, or None."""
    cands = [p for p in root.glob(f"screen-v*{tail}") if not p.name.startswith(prefix) and (p / "DONE").exists()] \
        if root.exists() else []
    return max(cands, key=lambda p: p.stat().st_mtime_ns) if cands else None


def ingest_base(ws: Workspace, config: Config, commit: int, g, h8_by_id: np.ndarray, src_digest: str,
                reg_digest: str | None = None):
    """(previous index, None) when the index of an older commit can be continued over the grown chain, else
    (None, the reason it cannot). `src_digest`: the sources with the mixers recognised by behaviour,
    `reg_digest`: the registry's own (which of the two changed is the reason given)."""
    from chaintrace.screen.index import FORMAT, PREFIX, index_root, load_index, registry_id

    tail = f"-r{registry_id(ws)}-{config.digest}"
    p = older_index(index_root(ws), PREFIX, tail, commit)
    if p is None:
        other = newest_other_format(index_root(ws), PREFIX, tail)
        if other is not None:
            return None, (f"previous index {other.name} is of another index format (this chaintrace writes format "
                          f"{FORMAT}): full rebuild")
        return None, "no previous index of this registry and configuration"
    prev = load_index(ws, config, p.name)
    if prev is None:
        return None, f"previous index {p.name} could not be read"
    pre = prev.meta.get("chain_prefix")
    if pre is None or "sources_digest" not in prev.meta:
        return None, f"previous index {p.name} predates incremental refresh (full rebuild)"
    if pre["n_tx"] > g.n_tx or pre["n_out"] > g.n_out:
        return None, f"the chain is shorter than at {p.name} (a reorg): full rebuild"
    if prefix_digest(g, h8_by_id, pre["n_tx"])["digest"] != pre["digest"]:
        return None, (f"the chain below the tip of {p.name} changed (a reorg, or blocks ingested below it): "
                      "full rebuild")
    if prev.meta["sources_digest"] != src_digest:
        if reg_digest is not None and prev.meta.get("registry_digest") == reg_digest:
            return None, (f"the custodial mixers recognised by behaviour changed since {p.name} (their "
                          "addresses or confidence): full rebuild")
        return None, f"the registry facts changed since {p.name} (an intel import or a new day): full rebuild"
    return prev, None


def group_rows(prev) -> dict[tuple[int, int], dict]:
    """(group, direction) -> the previous index's rows (out, taint, hop, parent)."""
    a = prev.arrays
    fg, fd = np.asarray(a["f_group"]).astype(np.int64), np.asarray(a["f_dir"]).astype(np.int64)
    key = fg * 2 + fd
    order = np.argsort(key, kind="stable")
    bounds = np.searchsorted(key[order], np.arange(2 * len(prev.groups) + 1))
    out = {}
    for gi in range(len(prev.groups)):
        for d in (0, 1):
            sel = order[bounds[2 * gi + d]:bounds[2 * gi + d + 1]]
            out[(gi, d)] = {"out": np.asarray(a["f_out"])[sel], "taint": np.asarray(a["f_taint"])[sel],
                            "hop": np.asarray(a["f_hop"])[sel].astype(np.int64),
                            "parent": np.asarray(a["f_parent"])[sel]}
    return out


def affected_addresses(g, f: dict, changed_keys: np.ndarray, n_groups: int, n_tx_old: int, n_out_old: int,
                       max_hops: int, n_addr: int) -> np.ndarray:
    """Boolean mask over addresses whose precomputed answer may differ from the previous index's: owners
    of outputs whose row changed (in either direction, rows that vanished included) or whose outgoing
    evidence path runs through a changed row, receivers of new outputs, spenders of the outputs new
    transactions spend (their totals changed)."""
    ng = 2 * max(1, n_groups)
    fkey = f["out"].astype(np.int64) * ng + f["group"].astype(np.int64) * 2 + f["dir"]
    marked = np.isin(fkey, changed_keys)
    out1 = f["dir"] == 1
    pkey = np.where(f["parent"] >= 0, f["parent"].astype(np.int64) * ng + f["group"].astype(np.int64) * 2 + 1, -1)
    for _ in range(max_hops + 1):  # an outgoing path goes from a row to its parent's, hops decreasing
        pos = np.minimum(np.searchsorted(fkey, pkey), max(len(fkey) - 1, 0))
        hit = out1 & (pkey >= 0) & (fkey[pos] == pkey) & marked[pos] if len(fkey) else marked
        new = hit & ~marked
        if not new.any():
            break
        marked |= new
    mask = np.zeros(n_addr, np.bool_)
    outs = np.concatenate([f["out"][marked], changed_keys // ng, np.arange(n_out_old, g.n_out)])
    old = np.arange(n_out_old)
    outs = np.concatenate([outs, old[g.out_spender_tx[:n_out_old] >= n_tx_old]])
    a = g.out_addr[outs]
    mask[a[a >= 0]] = True
    return mask
