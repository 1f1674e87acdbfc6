"""Text (Rich) and CSV renderings of a :class:`~chaintrace.trace.report.TraceReport` (any chain)."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from chaintrace.model.amounts import fmt_units
from chaintrace.model.ids import is_synthetic_txid, mark_txid
from chaintrace.trace.report import (TracePath, TraceReport, compare, entities, stopped_by_reason)

CSV_COLUMNS = ["address", "label", "category", "actor", "amount", "asset", "hops", "txid", "time", "time_iso",
               "ref", "value", "source", "via_cluster", "synthetic_id"]


def amount(report: TraceReport, value: int, asset: str | None = None, symbol: bool = False) -> str:
    asset = asset or report.asset
    dec = int(report.assets.get(asset, {}).get("decimals", 0))
    if not dec:
        return fmt_units(int(value), 0, report.asset_label(asset) if symbol else "")
    sign = "-" if value < 0 else ""
    q, r = divmod(abs(int(value)), 10**dec)
    text = f"{sign}{q:,}.{r:0{dec}d}"
    return f"{text} {report.asset_label(asset)}" if symbol else text


def when(ts: int | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(int(ts), timezone.utc).strftime("%Y-%m-%d %H:%M")


def _table(title: str | None, cols: list[str], right: set[str] = frozenset()) -> Table:
    t = Table(title=title, title_justify="left", header_style="bold", title_style="bold")
    for c in cols:
        t.add_column(c, justify="right" if c in right else "left", overflow="fold")
    return t


def policy_text(report: TraceReport) -> str:
    p = report.policy
    params = ", ".join(f"{k} {v}" for k, v in (p.get("params") or {}).items())
    return p["name"] + (f" ({params})" if params else "")


def held_label(report: TraceReport) -> str:
    """'still held' with its horizon: unspent / unmoved as of the end of the data."""
    word = "unspent" if report.chain == "btc" else "unmoved"
    h = (report.coverage or {}).get("held_as_of") or {}
    if h.get("height") is None:
        return f"still held ({word} at the end of the data)"
    hw = "synthetic block" if ((report.coverage or {}).get("heights") or {}).get("synthetic") else "height"
    return f"still held ({word} as of {hw} {h['height']} / {(h.get('time_iso') or '')[:10]})"


def evidence_lines(report: TraceReport) -> list[tuple[str, str]]:
    """(heading, sentence) pairs: what the data covers, what was assumed, which ids are synthesised. Every
    renderer shows them; an old report without a coverage block says so."""
    c, asm = report.coverage or {}, report.assumptions or {}
    if not c:
        return [("coverage", "unknown: this report predates coverage statements (re-run the trace)")]
    h, t = c.get("heights") or {}, c.get("times") or {}
    out = [("data", f"{', '.join(c.get('chains') or [])} ({c.get('network')}): "
                    f"{'synthetic ' if h.get('synthetic') else ''}blocks {h.get('first')}..{h.get('last')}, "
                    f"{(t.get('first_iso') or '?')[:10]} to {(t.get('last_iso') or '?')[:10]}; "
                    f"sources: {'; '.join(c.get('sources') or [])}"),
           ("held", c.get("held_means") or "")]
    if c.get("partial_seed_note"):
        out.append(("PARTIAL SEED", c["partial_seed_note"]))
    if c.get("synthetic_txid_note"):
        out.append(("synthesised ids", c["synthetic_txid_note"]))
    p = asm.get("policy") or {}
    if p:
        out.append(("policy", f"{policy_text(report)}: {p.get('means') or ''}"))
    th = {k: v for k, v in (asm.get("thresholds") or {}).items() if v not in (None, 0, 0.0)}
    out.append(("thresholds", ", ".join(f"{k} {v}" for k, v in th.items()) or "none (every amount followed)"))
    ob = asm.get("opening_balance")
    if ob and ob.get("debits"):
        over = ", ".join(f"{amount(report, int(v['amount']), a, True)} over {v['addresses']} addresses"
                         for a, v in (ob.get("over_store") or {}).items())
        seeds = sum(int(v) for v in (ob.get("seeds") or {}).values())
        out.append(("assumed opening balances",
                    f"{ob['debits']} debits larger than the known balance were covered by an assumed clean opening "
                    f"balance ({over or 'amount unknown'} in the whole store"
                    + (f"; {amount(report, seeds, None, True)} of it at the seeds" if seeds else "") + ")"))
    return out


def path_table(report: TraceReport, p: TracePath, title: str) -> Table:
    t = _table(title, ["hop", "output", "address", "traced", "of value", "time"], {"hop", "traced", "of value"})
    for s in p.steps:
        addr = s.address or ""
        if s.label:
            addr += f" [{s.label}]"
        t.add_row(str(s.hop), Text(mark_txid(s.ref)), addr, amount(report, s.amount, p.asset), amount(report, s.value, p.asset),
                  when(s.time))
    return t


def text_renderables(report: TraceReport, top: int = 10) -> list:
    """Rich renderables: seeds, where the value went per entity, the balance, holdings, top paths."""
    a = report.asset_label()  # column header: symbol beside the contract address
    out: list = []
    head = Text()
    head.append(f"Trace of {report.chain} ({report.network}) under policy {policy_text(report)}", style="bold")
    if report.partial:
        head.append(f"\nPARTIAL RESULT: {report.partial_reason}", style="bold red")
    out.append(head)
    ev = _table("evidence: what this trace stands on", ["", "statement"])
    for k, v in evidence_lines(report):
        ev.add_row(Text(k, style="bold red") if k.isupper() else k, v)
    out.append(ev)
    st = _table("seeds", ["seed", "kind", "outputs", f"seeded {a}"], {"outputs", f"seeded {a}"})
    for s in report.seeds:
        st.add_row(s.spec, s.kind, str(s.outputs), amount(report, s.amount, s.asset))
    out.append(st)

    ents = entities(report)
    if not ents:
        why = ("no tags were loaded: pass --tags TAGPACK.yaml or import intelligence (chaintrace intel import)"
               if not report.tags.get("sink_addresses") else "none of the sink addresses was reached")
        out.append(Text(f"no traced value reached a tagged service ({why})", style="yellow"))
    et = _table(f"where the value went: {len(ents)} receiving entit{'y' if len(ents) == 1 else 'ies'}",
                ["entity", "category", a, "share", "hops", "first seen", "last seen", "transfers", "addresses"],
                {a, "share", "hops", "transfers", "addresses"})
    for e in ents[:top * 3]:
        hops = str(e["hops_min"]) if e["hops_min"] == e["hops_max"] else f"{e['hops_min']}-{e['hops_max']}"
        et.add_row(e["entity"], e["category"] or "", amount(report, e["amount"], e["asset"]),
                   f"{100 * e['share']:.2f}%", hops, when(e["first_time"]), when(e["last_time"]),
                   str(e["transfers"]), str(e["addresses"]))
    if len(ents) > top * 3:
        et.add_row(f"... {len(ents) - top * 3} more (use --format json)", "", "", "", "", "", "", "", "")
    if ents:
        out.append(et)

    tot = report.totals(report.asset)
    bt = _table("balance (exact, base units)", ["", a, "share"], {a, "share"})

    def share(v: int) -> str:
        return f"{100 * v / tot['seeded']:.2f}%" if tot["seeded"] else ""

    bt.add_row("reached sinks", amount(report, tot["sinks"]), share(tot["sinks"]))
    utxo = report.chain == "btc"  # account chains (eth) hold balances, not unspent outputs
    bt.add_row(held_label(report), amount(report, tot["holdings"]),
               share(tot["holdings"]))
    for reason, v in stopped_by_reason(report).items():
        bt.add_row(f"stopped: {reason}", amount(report, v), share(v))
    bt.add_row("fees (to miners)" if utxo else "fees (gas)", amount(report, tot["fees"]), share(tot["fees"]))
    got = tot["sinks"] + tot["holdings"] + tot["stopped"] + tot["fees"]
    bt.add_row(Text("total seeded", style="bold"), Text(amount(report, tot["seeded"]), style="bold"),
               "= sum above" if got == tot["seeded"] else "MISMATCH")
    out.append(bt)

    if report.holdings:
        ht = _table(f"largest holdings ({len(report.holdings)} tainted "
                    + ("unspent outputs)" if utxo else "balances)"),
                    ["address", "label", a, "hops", "since", "output" if utxo else "transfer"], {a, "hops"})
        for h in report.holdings[:top]:
            ht.add_row(h.address or "(no address)", h.label or "", amount(report, h.amount, h.asset), str(h.hops),
                       when(h.time), Text(mark_txid(h.ref)))
        out.append(ht)
    bridged = [x for x in report.sinks if x.bridge is not None]
    if bridged:
        bt2 = _table(f"bridges: {len(bridged)} deposit(s) into a bridge, matched on the other chain",
                     ["deposit", a, "released on", "recipient", "amount", "fee (sat)", "delay (s)", "rule",
                      "confidence"], {a, "amount"})
        for x in bridged[:top]:
            if not x.bridge:
                bt2.add_row(Text(mark_txid(x.ref)), amount(report, x.amount, x.asset), "-", "no match", "", "", "",
                            "", "")
            for b in x.bridge or []:
                bt2.add_row(Text(mark_txid(x.ref)), amount(report, x.amount, x.asset), f"{b['chain']} {b['tx']}",
                            b["recipient"] or "", f"{b['amount']} {b['asset']}", str(b["fee_sat"]),
                            str(b["delay_s"]), b["rule"], f"{b['confidence']:.2f}")
        out.append(bt2)
        if report.assumptions.get("bridges"):
            out.append(Text(report.assumptions["bridges"], style="dim"))
    out.extend(detection_renderables(report, top))
    for i, p in enumerate(report.paths):
        out.append(path_table(report, p, f"path {i + 1}: {amount(report, p.amount, p.asset, True)} to "
                                          f"{p.to} ({p.kind}), {len(p.steps)} step(s)"))
    for e in report.explain:
        note = e.get("note") or f"{len(e['paths'])} path(s) carried traced value here"
        out.append(Text(f"explain {e['address']}: {note}", style="bold"))
        for i, p in enumerate(e["paths"]):
            out.append(path_table(report, p, f"{e['address']} #{i + 1}: {amount(report, p.amount, p.asset, True)}"
                                             f" ({p.kind})"))
        if e.get("detections"):
            from chaintrace.trace.detections import describe

            dt = _table(f"{e['address']}: detections touching it", ["kind", "where", "evidence"])
            for d in e["detections"][:top]:
                where, what = describe(d)
                dt.add_row(d["kind"], Text(mark_txid(where)), what)
            out.append(dt)
    s = report.stats
    tags = (f"{report.tags.get('sink_addresses', 0):,} sink addresses from {report.tags.get('tags_loaded', 0):,} "
            f"tags")
    if utxo:
        out.append(Text(f"{s.get('txs_processed', 0):,} transactions processed, {s.get('tainted_outputs', 0):,} "
                        f"tainted outputs; {tags}", style="dim"))
    else:
        out.append(Text(f"{s.get('transactions_with_taint', 0):,} transactions carried taint, "
                        f"{s.get('transfers_tainted', 0):,} tainted transfers ({s.get('transfers_scanned', 0):,} "
                        f"transfers scanned); {tags}", style="dim"))
    if report.probabilistic is not None:
        out.extend(probabilistic_renderables(report, top))
    if report.coinjoin_links is not None:
        out.extend(coinjoin_link_renderables(report, top))
    if report.cross_chain is not None:
        from chaintrace.report.crosschain import cross_chain_renderables

        out.extend(cross_chain_renderables(report, top))
    return out


def detection_renderables(report: TraceReport, top: int = 10) -> list:
    """The laundering shapes touching the traced paths (``report.detections``), a few per kind."""
    d = report.detections
    if not d:
        return []
    from chaintrace.trace.detections import describe

    c = d["counts"]
    shown = ", ".join(f"{k} {n}" for k, n in c.items())
    t = _table(f"detections touching the traced paths: {shown}", ["kind", "where", "evidence", "thresholds"])
    for kind, rows in d["detections"].items():
        th = ", ".join(f"{k}={v}" for k, v in d["thresholds"].get(kind, {}).items())
        for r in rows[:top]:
            where, what = describe(r)
            t.add_row(kind, Text(mark_txid(where)), what, th)
    return [t, Text(d["note"], style="dim")]


def probabilistic_renderables(report: TraceReport, top: int = 10) -> list:
    """``trace --through-mixers``: the mixers, their candidate links and the trace of the linked payouts,
    marked probabilistic and kept apart from the deterministic result above."""
    sec = report.probabilistic or {}
    a = report.asset_label()
    out: list = [Text("PROBABILISTIC: value followed through custodial mixers along candidate links (amount "
                      "minus fee, delay); not proof, not part of the balance above", style="bold magenta"),
                 Text(sec.get("note", ""), style="dim")]
    if not sec.get("mixers"):
        out.append(Text("no traced value reached a custodial mixer (mixing_service sink)", style="yellow"))
        return out
    mt = _table("custodial mixers (exact: traced in = linked out + held)",
                ["mixer", "traced in", "linked out", "held (fee, unlinked)", "deposits", "linked", "ambiguous",
                 "unlinked"], {"traced in", "linked out", "held (fee, unlinked)"})
    for m in sec["mixers"]:
        mt.add_row(m["entity"], amount(report, int(m["traced_in"])), amount(report, int(m["linked_out"])),
                   amount(report, int(m["held"])), str(m["traced_deposits"]), str(m["deposits_linked"]),
                   str(m["deposits_ambiguous"]), str(m["deposits_unlinked"]))
    out.append(mt)
    lt = _table(f"candidate links ({len(sec['links'])}; largest first)",
                ["deposit", "payout", a, "confidence", "rule", "delay (blocks)"], {a, "confidence"})
    for x in sec["links"][:top]:
        lt.add_row(Text(mark_txid(x["deposit"])), Text(mark_txid(x["payout"])), amount(report, int(x["amount"])),
                   f"{x['confidence']:.2f}", x["rule"].split(":")[-1], str(x["delay_blocks"]))
    out.append(lt)
    sub = sec.get("trace")
    if sub is not None:
        out.extend(text_renderables(sub, top)[2:])
    return out


def coinjoin_link_renderables(report: TraceReport, top: int = 10) -> list:
    """``trace --coinjoins link``: the CoinJoin rounds the traced value entered, the outputs linked to the
    traced side by their later spending and the trace of them, kept apart from the deterministic result."""
    sec = report.coinjoin_links or {}
    a = report.asset_label()
    out: list = [Text("HEURISTIC: value stopped at CoinJoin rounds, followed along the outputs their later spending "
                      "links to the traced side; not proof, not part of the balance above", style="bold magenta"),
                 Text(sec.get("note", ""), style="dim")]
    if not sec.get("rounds"):
        out.append(Text("no traced value entered a detected CoinJoin", style="yellow"))
        return out
    rt = _table("CoinJoin rounds (exact: traced in = linked out + held)",
                ["round", "traced in", "linked out", "held (others, unlinked)", "outputs", "linked"],
                {"traced in", "linked out", "held (others, unlinked)"})
    for r in sec["rounds"][:top]:
        rt.add_row(Text(mark_txid(r["txid"])), amount(report, int(r["traced_in"])),
                   amount(report, int(r["linked_out"])), amount(report, int(r["held"])), str(r["outputs"]),
                   str(r["linked_outputs"]))
    out.append(rt)
    lt = _table(f"linked outputs ({len(sec['links'])})", ["output", a, "rule", "confidence", "evidence", "hops"],
                {a, "confidence"})
    for x in sorted(sec["links"], key=lambda x: -int(x["amount"]))[:top]:
        lt.add_row(Text(mark_txid(x["output"])), amount(report, int(x["amount"])), x["rule"],
                   f"{x['confidence']:.2f}", Text(mark_txid(x["evidence_txid"])), str(x["hops"]))
    out.append(lt)
    sub = sec.get("trace")
    if sub is not None:
        out.extend(text_renderables(sub, top)[2:])
    return out


def print_text(report: TraceReport, console: Console | None = None, top: int = 10) -> None:
    console = console or Console()
    for r in text_renderables(report, top):
        console.print(r)


def to_text(report: TraceReport, width: int = 140, top: int = 10) -> str:
    """The text rendering as a plain string (no colours)."""
    buf = io.StringIO()
    c = Console(file=buf, width=width, color_system=None, force_terminal=False)
    c.print(Group(*text_renderables(report, top)))
    return buf.getvalue()


def csv_rows(report: TraceReport):
    for s in report.sinks:
        yield [s.address, s.label, s.category or "", s.actor or "", str(s.amount), s.asset, s.hops, s.txid,
               "" if s.time is None else s.time, when(s.time), s.ref, str(s.value), s.source or "",
               "true" if s.via_cluster else "false", "true" if is_synthetic_txid(s.txid) else "false"]


def to_csv(report: TraceReport) -> str:
    """One row per transfer into a sink (amounts in base units)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    w.writerows(csv_rows(report))
    return buf.getvalue()


def comparison_table(reports: list[TraceReport], top: int = 20) -> Table:
    """Per entity, the amount under each report's policy and the spread between them."""
    a = reports[0].asset_label()
    cols = ["entity", "category"] + [f"{policy_text(r)} {a}" for r in reports] + ["spread"]
    t = _table("how the models differ", cols, set(cols[2:]))
    for row in compare(reports)[:top]:
        t.add_row(row["entity"], row["category"] or "",
                  *[amount(reports[0], v, row["asset"]) for v in row["amounts"]],
                  amount(reports[0], row["spread"], row["asset"]))
    return t
