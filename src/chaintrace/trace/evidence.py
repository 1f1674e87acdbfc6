"""What a trace report stands on: the coverage of the data and the assumptions the engine made.

:func:`describe_evidence` fills ``report.coverage`` and ``report.assumptions`` (docs/tracing.md, "Evidence"):

* coverage: chain, network, block/height and date range of the store, the data's sources, whether block and
  transaction ids are synthesised (transfer lists), what "still held" means at the end of the data ("unspent /
  unmoved as of height H / date D"), and per address seed whether the data holds what it spent: an address that
  sent more than the data shows it receiving was funded before the data begins (for a theft: the theft itself
  is missing), so the trace seeds less than was stolen — the seed is *partial* and every rendering says so;
* assumptions: the policy, the thresholds (``limits``), and on account chains the clean opening balances the
  engine assumed for debits larger than the known balance (how many, and how much value over the store).
"""
from __future__ import annotations

from typing import Any

from chaintrace.model.ids import SYNTHETIC_NOTE, SYNTHETIC_TX_PREFIX
from chaintrace.trace.report import TraceReport, iso

POLICY_MEANING = {
    "haircut": "every output (transfer) of a tainted holding carries taint in proportion to the holding's tainted share",
    "poison": "any output of a transaction with a tainted input is wholly tainted (upper bound)",
    "seniority": "tainted value leaves first (tainted-first-out)",
    "fifo": "value leaves in the order it arrived (first in, first out)",
    "lifo": "the newest value leaves first (last in, first out)",
}


def _range(con, chain: str) -> tuple:
    return con.execute(f"SELECT min(height), max(height), min(time), max(time), count(*) FROM {chain}.blocks"
                       ).fetchone()


def _address_flows(con, chain: str, addresses: list[str]) -> dict[str, tuple[int, int]]:
    """address -> (received, sent) in the chain's main asset over the whole store (account chains; one scan)."""
    if chain != "eth" or not addresses:
        return {}
    marks = ", ".join("?" for _ in addresses)
    rows = con.execute(f"""
        WITH v AS (SELECT to_address, from_address, CAST(coalesce(value, CAST(value_big AS HUGEINT)) AS HUGEINT) AS v
                   FROM eth.transfers WHERE asset_id = 0 AND (to_address IN ({marks}) OR from_address IN ({marks}))),
             x AS (SELECT to_address AS a, v AS got, 0 AS gave FROM v UNION ALL SELECT from_address, 0, v FROM v)
        SELECT a, CAST(sum(got) AS VARCHAR), CAST(sum(gave) AS VARCHAR) FROM x WHERE a IN ({marks}) GROUP BY a""",
                       addresses * 3).fetchall()
    out = {a: (0, 0) for a in addresses}
    out.update({a: (int(g), int(s)) for a, g, s in rows})
    return out


def _opening_balances(con, chain: str) -> dict | None:
    """The clean opening balance the account engine has to assume, over every (address, asset) of the store: the
    largest shortfall of its running balance (debits before the credits that would cover them)."""
    if chain != "eth":
        return None
    r = con.execute("""
        WITH m AS (SELECT transfer_id, from_address AS a, asset_id,
                          -CAST(coalesce(value, CAST(value_big AS HUGEINT)) AS HUGEINT) AS d
                   FROM eth.transfers WHERE from_address IS NOT NULL
                   UNION ALL
                   SELECT transfer_id, to_address, asset_id, CAST(coalesce(value, CAST(value_big AS HUGEINT)) AS HUGEINT)
                   FROM eth.transfers WHERE to_address IS NOT NULL),
             run AS (SELECT a, asset_id, sum(d) OVER (PARTITION BY a, asset_id ORDER BY transfer_id, d
                     ROWS UNBOUNDED PRECEDING) AS bal FROM m),
             per AS (SELECT a, asset_id, greatest(-min(bal), 0) AS need FROM run GROUP BY a, asset_id)
        SELECT asset_id, count(*) FILTER (WHERE need > 0), CAST(coalesce(sum(need), 0) AS VARCHAR)
        FROM per GROUP BY asset_id ORDER BY asset_id""").fetchall()
    names = dict(con.execute("SELECT asset_id, coalesce(symbol, address) FROM eth.assets").fetchall())
    return {names.get(a, str(a)): {"addresses": int(n), "amount": str(int(v))} for a, n, v in r if int(n)}


def describe_evidence(ws, report: TraceReport, request) -> None:
    """Fill ``report.coverage`` and ``report.assumptions`` from the workspace the trace ran on."""
    chain = report.chain
    store = ws.chain(chain)
    meta = dict(store.meta) if store.exists else {}
    con = ws.connect()
    lo_h, hi_h, lo_t, hi_t, n_blocks = _range(con, chain)
    synthetic_blocks = bool(meta.get("synthetic_blocks"))
    n_syn = int(meta.get("synthetic_txids") or 0)
    end_h, end_t = hi_h, hi_t
    until = getattr(request, "until", None)
    if until is not None:
        if until.kind == "height" and hi_h is not None and until.value < hi_h:
            end_h = until.value
            end_t = con.execute(f"SELECT max(time) FROM {chain}.blocks WHERE height <= ?", [end_h]).fetchone()[0]
        elif until.kind == "time" and hi_t is not None and until.value < hi_t:
            end_t = until.value
            end_h = con.execute(f"SELECT max(height) FROM {chain}.blocks WHERE time <= ?", [end_t]).fetchone()[0]
    unit = "unspent" if chain == "btc" else "unmoved"
    height_word = "synthetic block" if synthetic_blocks else "height"
    held = (f"still held = {unit} as of {height_word} {end_h} / {iso(end_t)} (the end of the data the trace "
            f"read); later movements are not in the data") if end_h is not None else "no blocks in the store"
    sources = [meta["source_file"]] if meta.get("source_file") else [
        f"{chain} blocks ingested into {store.root}" if hasattr(store, "root") else f"{chain} blocks in the store"]
    seeds_cov: list[dict[str, Any]] = []
    partial_seeds: list[dict[str, Any]] = []
    address_seeds = list(dict.fromkeys(s.spec for s in report.seeds if s.kind == "address"))
    flows = _address_flows(con, chain, sorted({a.lower() for a in address_seeds}))
    for spec in address_seeds:
        if spec.lower() not in flows:
            continue
        received, sent = flows[spec.lower()]
        row = {"seed": spec, "received_in_data": str(received), "sent_in_data": str(sent),
               "missing": str(max(sent - received, 0)), "partial": sent > received}
        seeds_cov.append(row)
        if sent > received:
            partial_seeds.append(row)
    coverage: dict[str, Any] = {
        "chains": [chain], "network": report.network,
        "heights": {"first": lo_h, "last": hi_h, "synthetic": synthetic_blocks},
        "times": {"first": lo_t, "last": hi_t, "first_iso": iso(lo_t), "last_iso": iso(hi_t)},
        "blocks": int(n_blocks or 0), "sources": sources,
        "synthetic_txids": n_syn,
        "synthetic_txid_note": (f"{n_syn} transaction ids start with {SYNTHETIC_TX_PREFIX}: {SYNTHETIC_NOTE}"
                                if n_syn else None),
        "held_as_of": {"height": end_h, "time": end_t, "time_iso": iso(end_t)},
        "held_means": held,
        "sinks_mean": "transfers into addresses tagged as services (exchanges, bridges, mixers) by the loaded tags",
        "seeds": seeds_cov,
        "partial_seed": bool(partial_seeds),
        "partial_seed_note": None,
    }
    if partial_seeds:
        a = report.asset
        dec = int(report.assets.get(a, {}).get("decimals", 0))
        miss = sum(int(r["missing"]) for r in partial_seeds)
        q, rem = divmod(miss, 10**dec)
        exact = f"{q:,}" + (f".{rem:0{dec}d}".rstrip("0").rstrip(".") if dec else "")
        coverage["partial_seed_note"] = (
            f"the data begins after {len(partial_seeds)} seed(s) were funded: they sent {exact} {a} "
            f"more than the data shows them receiving (e.g. the theft itself is not in the data), so the trace "
            f"seeds only what the data shows arriving and covers the rest with an assumed clean opening balance; "
            f"shares of the seeded value are not shares of what was stolen")
    report.coverage = coverage
    stats = report.stats or {}
    assumptions: dict[str, Any] = {
        "policy": {"name": report.policy.get("name"), "params": report.policy.get("params") or {},
                   "means": POLICY_MEANING.get(str(report.policy.get("name")), "")},
        "thresholds": {k: report.limits.get(k) for k in ("min_value", "min_share", "max_hops", "max_txs", "since",
                                                         "until")},
    }
    if "opening_balance_assumed" in stats:
        ob: dict[str, Any] = {"debits": int(stats.get("opening_balance_assumed") or 0),
              "meaning": "a debit larger than the balance the data shows is covered by an assumed clean opening "
                         "balance (the account was funded before the data begins)"}
        over = _opening_balances(con, chain) if ob["debits"] else None  # one pass over the store, only when needed
        if over is not None:
            ob["over_store"] = over
        ob["seeds"] = {r["seed"]: r["missing"] for r in partial_seeds}
        assumptions["opening_balance"] = ob
    if chain == "btc":
        assumptions["coinjoins"] = getattr(request, "coinjoins", None)
    report.assumptions = assumptions
