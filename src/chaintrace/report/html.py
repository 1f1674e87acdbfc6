"""One-page HTML summary of one or more trace reports (same seeds, different policies).

Self-contained (inline CSS, no scripts, no network), printable, every value escaped. Amounts are shown in
whole units with their exact base-unit value in the tooltip.
"""
from __future__ import annotations

from datetime import datetime, timezone
from html import escape
from pathlib import Path

from chaintrace.model.ids import SYNTHETIC_NOTE, is_synthetic_txid
from chaintrace.report.text import amount, evidence_lines, held_label, policy_text, when
from chaintrace.trace.report import TraceReport, compare, stopped_by_reason

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d2733;margin:2em auto;max-width:1100px;padding:0 1em}
h1{font-size:1.5em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.6em 0 .5em;border-bottom:1px solid #d8dee6;padding-bottom:.2em}
.muted{color:#667483}.warn{background:#fff1f0;border:1px solid #f5b5b0;padding:.5em .8em;border-radius:4px}
table{border-collapse:collapse;width:100%;margin:.3em 0}th,td{padding:.25em .5em;border-bottom:1px solid #eef1f4;text-align:left;vertical-align:top}
th{background:#f5f7f9;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.cards{display:flex;gap:1em;flex-wrap:wrap}.card{border:1px solid #d8dee6;border-radius:6px;padding:.6em .9em;min-width:230px;flex:1}
.card b{font-size:1.3em}.bar{display:inline-block;height:.7em;background:#3b82c4;border-radius:2px;vertical-align:middle}
.bar.b1{background:#e0873a}.bar.b2{background:#4aa56b}.bar.b3{background:#8e62c1}
.syn{color:#b42318;font-weight:600}code.synthetic{text-decoration:underline dotted #b42318}
code{font:12px ui-monospace,Menlo,Consolas,monospace;word-break:break-all}
"""


def _amt(r: TraceReport, v: int, asset: str | None = None) -> str:
    return (f'<span title="{int(v)} base units of {escape(r.asset_label(asset))}">'
            f'{escape(amount(r, v, asset))}</span>')


def _id(ref: str | None) -> str:
    """An id as HTML: synthesised ids are visibly marked and never look like on-chain ids."""
    if is_synthetic_txid(ref):
        return (f'<code class=synthetic title="{escape(SYNTHETIC_NOTE)}">{escape(ref or "")}</code> '
                '<span class=syn>[synthesised]</span>')
    return f"<code>{escape(ref or '')}</code>"


def evidence_html(report: TraceReport) -> str:
    rows = "".join(f"<tr><th>{escape(k)}</th><td{' class=warn' if k.isupper() else ''}>{escape(v)}</td></tr>"
                   for k, v in evidence_lines(report))
    return f"<h2>Evidence: what this trace stands on ({escape(policy_text(report))})</h2><table>{rows}</table>"


def _pct(v: int, total: int) -> str:
    return f"{100 * v / total:.2f}%" if total else ""


def render_html(reports: list[TraceReport], title: str | None = None, note: str | None = None) -> str:
    """The summary page of `reports` (the first one is the primary: its paths and holdings are shown)."""
    if not reports:
        raise ValueError("no report to render")
    r0 = reports[0]
    a = r0.asset
    total = r0.total_seeded.get(a, 0)
    a_label = r0.asset_label(a)  # amounts are keyed by contract address; the symbol is shown beside it
    title = title or f"Trace summary: {r0.chain} {', '.join(s.spec[:20] for s in r0.seeds[:3])}"
    h: list[str] = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>",
                    f"<style>{CSS}</style></head><body>", f"<h1>{escape(title)}</h1>"]
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    h.append(f'<p class=muted>{escape(r0.chain)} ({escape(r0.network)}), generated {now} by chaintrace. '
             f'Seeded: {_amt(r0, total)} {escape(a_label)} from {len(r0.seeds)} seed(s). '
             f'Policies: {", ".join(escape(policy_text(r)) for r in reports)}.</p>')
    if note:
        h.append(f"<p>{escape(note)}</p>")
    for r in reports:
        if r.partial:
            h.append(f'<p class=warn>Partial result under {escape(policy_text(r))}: {escape(r.partial_reason or "")}</p>')
    if (r0.coverage or {}).get("partial_seed_note"):
        h.append(f'<p class=warn><b>Partial seed:</b> {escape(r0.coverage["partial_seed_note"])}</p>')
    h.append(evidence_html(r0))

    h.append("<h2>Outcome per model</h2><div class=cards>")
    for r in reports:
        t = r.totals(r.asset)
        rows = [("reached sinks (cashed out)", t["sinks"]), (held_label(r), t["holdings"])]
        rows += [(f"stopped: {k}", v) for k, v in stopped_by_reason(r).items()]
        rows.append(("fees", t["fees"]))
        h.append(f"<div class=card><div class=muted>{escape(policy_text(r))}</div>"
                 f"<b>{_pct(t['sinks'], t['seeded'])}</b> to sinks<table>")
        for k, v in rows:
            h.append(f"<tr><td>{escape(k)}</td><td class=n>{_amt(r, v)}</td><td class=n>{_pct(v, t['seeded'])}</td></tr>")
        ok = t["sinks"] + t["holdings"] + t["stopped"] + t["fees"] == t["seeded"]
        h.append(f"<tr><th>total seeded</th><th class=n>{_amt(r, t['seeded'])}</th>"
                 f"<th class=n>{'exact' if ok else 'MISMATCH'}</th></tr></table></div>")
    h.append("</div>")

    h.append(f"<h2>Where the money went (per receiving entity, {escape(a_label)})</h2><table><tr><th>entity</th>"
             "<th>category</th>")
    for r in reports:
        h.append(f"<th class=n>{escape(policy_text(r))}</th><th class=n>share</th>")
    h.append("<th>hops</th><th>first seen</th><th></th></tr>")
    rows = compare(reports)
    peak = max((max(x["amounts"]) for x in rows), default=0) or 1
    for row in rows[:40]:
        h.append(f"<tr><td>{escape(row['entity'])}</td><td>{escape(row['category'] or '')}</td>")
        for v in row["amounts"]:
            h.append(f"<td class=n>{_amt(r0, v, row['asset'])}</td><td class=n>{_pct(v, total)}</td>")
        hops = [x for x in row["hops"] if x]
        hop_txt = f"{min(x[0] for x in hops)}-{max(x[1] for x in hops)}" if hops else ""
        firsts = [x for x in row["first_time"] if x is not None]
        bars = "".join(f'<span class="bar b{i % 4}" style="width:{max(1, int(120 * v / peak))}px" '
                       f'title="{escape(policy_text(reports[i]))}"></span><br>'
                       for i, v in enumerate(row["amounts"]))
        h.append(f"<td>{escape(hop_txt)}</td><td>{escape(when(min(firsts)) if firsts else '')}</td>"
                 f"<td>{bars}</td></tr>")
    if not rows:
        h.append(f"<tr><td colspan={4 + 2 * len(reports)} class=muted>no traced value reached a tagged "
                 "service</td></tr>")
    h.append("</table>")

    if r0.paths:
        h.append(f"<h2>Top paths ({escape(policy_text(r0))})</h2>")
        for i, p in enumerate(r0.paths):
            h.append(f"<p><b>{i + 1}.</b> {_amt(r0, p.amount, p.asset)} {escape(r0.asset_label(p.asset))} to "
                     f"<code>{escape(p.to or '')}</code> ({escape(p.kind)}), {len(p.steps)} step(s)</p>"
                     "<table><tr><th class=n>hop</th><th>output</th><th>address</th><th class=n>traced</th>"
                     "<th>time</th></tr>")
            steps = p.steps if len(p.steps) <= 12 else p.steps[:6] + [None] + p.steps[-5:]
            for s in steps:
                if s is None:
                    h.append(f"<tr><td colspan=5 class=muted>... {len(p.steps) - 11} more steps ...</td></tr>")
                    continue
                h.append(f"<tr><td class=n>{s.hop}</td><td>{_id(s.ref)}</td>"
                         f"<td><code>{escape(s.address or '')}</code> {escape(s.label or '')}</td>"
                         f"<td class=n>{_amt(r0, s.amount, p.asset)}</td><td>{escape(when(s.time))}</td></tr>")
            h.append("</table>")
    if r0.holdings:
        h.append(f"<h2>Largest holdings, {escape(held_label(r0))} ({escape(policy_text(r0))}, "
                 f"{len(r0.holdings)} outputs)</h2><table><tr><th>address</th><th class=n>traced</th>"
                 "<th class=n>hops</th><th>output</th></tr>")
        for x in r0.holdings[:10]:
            h.append(f"<tr><td><code>{escape(x.address or '')}</code> {escape(x.label or '')}</td>"
                     f"<td class=n>{_amt(r0, x.amount, x.asset)}</td><td class=n>{x.hops}</td>"
                     f"<td>{_id(x.ref)}</td></tr>")
        h.append("</table>")
    if r0.probabilistic is not None:
        h.append(probabilistic_html(r0))
    if r0.coinjoin_links is not None:
        h.append(coinjoin_links_html(r0))
    if r0.cross_chain is not None:
        from chaintrace.report.crosschain import cross_chain_html

        h.append(cross_chain_html(r0))
    bridged = [x for x in r0.sinks if x.bridge is not None]
    if bridged:
        h.append("<h2>Bridges: deposits matched on the other chain</h2><table><tr><th>deposit</th>"
                 "<th class=n>traced</th><th>released on</th><th>recipient</th><th class=n>amount</th>"
                 "<th class=n>fee (sat)</th><th class=n>delay (s)</th><th>rule</th><th class=n>confidence</th></tr>")
        for x in bridged[:40]:
            for b in x.bridge or [{"chain": "-", "tx": "no match", "recipient": "", "amount": "", "asset": "",
                                   "fee_sat": "", "delay_s": "", "rule": "", "confidence": None}]:
                conf = "" if b["confidence"] is None else f"{b['confidence']:.2f}"
                h.append(f"<tr><td>{_id(x.ref)}</td><td class=n>{_amt(r0, x.amount, x.asset)}</td>"
                         f"<td>{escape(str(b['chain']))} <code>{escape(str(b['tx']))}</code></td>"
                         f"<td><code>{escape(str(b['recipient'] or ''))}</code></td>"
                         f"<td class=n>{escape(str(b['amount']))} {escape(str(b['asset']))}</td>"
                         f"<td class=n>{escape(str(b['fee_sat']))}</td><td class=n>{escape(str(b['delay_s']))}</td>"
                         f"<td>{escape(b['rule'])}</td><td class=n>{conf}</td></tr>")
        h.append("</table>")
        if r0.assumptions.get("bridges"):
            h.append(f"<p class=muted>{escape(r0.assumptions['bridges'])}</p>")
    h.append(detections_html(r0))
    h.append("<h2>Seeds</h2><table><tr><th>seed</th><th>kind</th><th class=n>outputs</th><th class=n>seeded</th></tr>")
    for s in r0.seeds:
        h.append(f"<tr><td><code>{escape(s.spec)}</code></td><td>{escape(s.kind)}</td><td class=n>{s.outputs}</td>"
                 f"<td class=n>{_amt(r0, s.amount, s.asset)}</td></tr>")
    h.append("</table>")
    h.append(f'<p class=muted>Amounts are exact integer base units (hover for the raw value). Every model '
             f'satisfies sinks + holdings + stopped + fees = total seeded exactly. Report schema '
             f'{escape(r0.schema)} (docs/tracing.md). Sinks: {r0.tags.get("sink_addresses", 0)} service addresses '
             f'from {r0.tags.get("tags_loaded", 0)} tags.</p></body></html>')
    return "".join(h)


def write_html(reports: list[TraceReport], path: str | Path, title: str | None = None, note: str | None = None
               ) -> Path:
    """Write the summary page atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render_html(reports, title, note))
    tmp.replace(path)
    return path


def probabilistic_html(r: TraceReport, top: int = 20) -> str:
    """``trace --through-mixers``: the mixers, candidate links and where the linked value went, marked
    probabilistic and apart from the deterministic result."""

    sec = r.probabilistic or {}
    h = ["<h2>Probabilistic: through custodial mixers (candidate links, not proof)</h2>",
         f"<p class=muted>{escape(sec.get('note', ''))}</p>"]
    if not sec.get("mixers"):
        h.append("<p>No traced value reached a custodial mixer.</p>")
        return "".join(h)
    h.append("<table><tr><th>mixer</th><th class=n>traced in</th><th class=n>linked out</th>"
             "<th class=n>held (fee, unlinked)</th><th class=n>deposits</th><th class=n>linked</th>"
             "<th class=n>ambiguous</th></tr>")
    for m in sec["mixers"]:
        h.append(f"<tr><td>{escape(m['entity'])}</td><td class=n>{_amt(r, int(m['traced_in']))}</td>"
                 f"<td class=n>{_amt(r, int(m['linked_out']))}</td><td class=n>{_amt(r, int(m['held']))}</td>"
                 f"<td class=n>{m['traced_deposits']}</td><td class=n>{m['deposits_linked']}</td>"
                 f"<td class=n>{m['deposits_ambiguous']}</td></tr>")
    h.append("</table><table><tr><th>deposit</th><th>payout</th><th class=n>linked amount</th>"
             "<th class=n>confidence</th><th>rule</th><th class=n>delay</th></tr>")
    for x in sec["links"][:top]:
        h.append(f"<tr><td>{_id(x['deposit'])}</td><td>{_id(x['payout'])}</td>"
                 f"<td class=n>{_amt(r, int(x['amount']))}</td><td class=n>{x['confidence']:.2f}</td>"
                 f"<td>{escape(x['rule'])}</td><td class=n>{x['delay_blocks']}</td></tr>")
    h.append("</table>")
    sub = sec.get("trace")
    if sub is not None:
        h.append(_entities_reached(r, sub, "probabilistic", top))
        for ex in sub.explain:
            h.append(f"<p><b>explain {escape(ex['address'])} (probabilistic)</b>: {escape(ex.get('note') or '')}</p>")
    return "".join(h)


def coinjoin_links_html(r: TraceReport, top: int = 20) -> str:
    """``trace --coinjoins link``: the CoinJoin rounds, the outputs linked by their later spending and where
    the linked value went, marked heuristic and apart from the deterministic result."""

    sec = r.coinjoin_links or {}
    h = ["<h2>Heuristic: past CoinJoins (post-mix links, not proof)</h2>",
         f"<p class=muted>{escape(sec.get('note', ''))}</p>"]
    if not sec.get("rounds"):
        h.append("<p>No traced value entered a detected CoinJoin.</p>")
        return "".join(h)
    h.append("<table><tr><th>round</th><th class=n>traced in</th><th class=n>linked out</th>"
             "<th class=n>held (others, unlinked)</th><th class=n>outputs</th><th class=n>linked</th></tr>")
    for x in sec["rounds"][:top]:
        h.append(f"<tr><td>{_id(x['txid'])}</td><td class=n>{_amt(r, int(x['traced_in']))}</td>"
                 f"<td class=n>{_amt(r, int(x['linked_out']))}</td><td class=n>{_amt(r, int(x['held']))}</td>"
                 f"<td class=n>{x['outputs']}</td><td class=n>{x['linked_outputs']}</td></tr>")
    h.append("</table><table><tr><th>output</th><th class=n>linked amount</th><th>rule</th>"
             "<th class=n>confidence</th><th>evidence</th></tr>")
    for x in sorted(sec["links"], key=lambda x: -int(x["amount"]))[:top]:
        h.append(f"<tr><td>{_id(x['output'])}</td><td class=n>{_amt(r, int(x['amount']))}</td>"
                 f"<td>{escape(x['rule'])}</td><td class=n>{x['confidence']:.2f}</td>"
                 f"<td>{_id(x['evidence_txid'])}</td></tr>")
    h.append("</table>")
    sub = sec.get("trace")
    if sub is not None:
        h.append(_entities_reached(r, sub, "linked", top))
    return "".join(h)


def _entities_reached(r: TraceReport, sub: TraceReport, label: str, top: int) -> str:
    """The entities a probabilistic or heuristic sub-trace reached, as a table marked `label`."""
    from chaintrace.trace.report import entities

    h = [f"<table><tr><th>entity reached ({label})</th><th>category</th><th class=n>amount</th></tr>"]
    for e in entities(sub)[:top]:
        h.append(f"<tr><td>{escape(str(e['entity']))}</td><td>{escape(str(e['category'] or ''))}</td>"
                 f"<td class=n>{_amt(r, e['amount'], e['asset'])}</td></tr>")
    h.append("</table>")
    return "".join(h)


def detections_html(r: TraceReport, top: int = 20) -> str:
    """The laundering shapes touching the traced paths (``report.detections``) and those touching each
    explained address, with their evidence."""
    from chaintrace.trace.detections import describe

    d = r.detections
    if not d:
        return ""
    shown = ", ".join(f"{escape(k)} {n}" for k, n in d["counts"].items())
    h = [f"<h2>Detections touching the traced paths</h2><p>{shown}</p><table><tr><th>kind</th><th>where</th>"
         "<th>evidence</th><th>thresholds</th></tr>"]
    rows = [(k, x) for k, xs in d["detections"].items() for x in xs[:top]]
    for e in r.explain:
        rows += [(f"{x['kind']} (touches {e['address']})", x) for x in e.get("detections", [])[:top]]
    for kind, x in rows:
        where, what = describe(x)
        th = ", ".join(f"{k}={v}" for k, v in d["thresholds"].get(x["kind"], {}).items())
        h.append(f"<tr><td>{escape(kind)}</td><td><code>{escape(where)}</code></td><td>{escape(what)}</td>"
                 f"<td>{escape(th)}</td></tr>")
    h.append(f"</table><p class=muted>{escape(d['note'])}</p>")
    return "".join(h)
