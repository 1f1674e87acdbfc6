"""Text and HTML renderings of ``report.cross_chain`` (``trace --through-bridges``,
:mod:`chaintrace.trace.crosschain`): the bridge deposits with their exact balance, each cross-chain flow with
both legs, the matching rule and confidence, and where the carried value went on the other chain, deterministic
and probabilistic apart."""
from __future__ import annotations

from html import escape

from rich.text import Text

from chaintrace.model.ids import mark_txid
from chaintrace.trace.report import TraceReport, entities


def _kinds(sec: dict):
    for det, name in ((True, "DETERMINISTIC"), (False, "PROBABILISTIC")):
        flows = [(i, f) for i, f in enumerate(sec.get("flows", []), 1) if f["deterministic"] == det]
        yield det, name, flows


def cross_chain_renderables(report: TraceReport, top: int = 10) -> list:
    from chaintrace.report.text import _table, amount, path_table

    sec = report.cross_chain or {}
    other = sec.get("to_chain", "?")
    out: list = [Text(f"CROSS-CHAIN: continued on {other} from the bridge releases matched with traced deposits "
                      "(--through-bridges)", style="bold cyan"),
                 Text(f"{sec.get('note', '')}. Conversion: {sec.get('conversion', '')}", style="dim")]
    for n in sec.get("assumed", []):
        out.append(Text(n, style="dim"))
    a = report.asset_label()
    dt = _table(f"bridge deposits on {report.chain} (exact: traced in = crossed + kept)",
                ["deposit", "bridge", f"traced in ({a})", "crossed, deterministic", "crossed, probabilistic",
                 "kept (fee, unmatched, rest)"],
                {f"traced in ({a})", "crossed, deterministic", "crossed, probabilistic", "kept (fee, unmatched, rest)"})
    for d in sec.get("deposits", []):
        dt.add_row(Text(mark_txid(d["ref"])), d["label"] or d["address"], amount(report, int(d["traced_in"]), d["asset"]),
                   amount(report, int(d["crossed_deterministic"]), d["asset"]),
                   amount(report, int(d["crossed_probabilistic"]), d["asset"]), amount(report, int(d["kept"]), d["asset"]))
    out.append(dt)
    if not sec.get("flows"):
        out.append(Text(f"no traced bridge deposit has a matched release on {other} carrying value", style="yellow"))
    for det, name, flows in _kinds(sec):
        if not flows:
            continue
        ft = _table(f"{name} cross-chain flows ({len(flows)}): {report.chain} deposit -> {other} release",
                    ["#", "deposit", "release", "recipient", "rule", "confidence", "carried"], {"carried", "confidence"})
        for i, f in flows[:top]:
            sub = f["trace"]
            ft.add_row(str(i), Text(mark_txid(f["deposit"]["ref"])), Text(mark_txid(f["release"]["ref"] or f["release"]["tx"])),
                       f["release"]["recipient"] or "", f["rule"], f"{f['confidence']:.2f}",
                       amount(sub, int(f["carried"]), f["carried_asset"], True))
        out.append(ft)
        et = _table(f"{name}: where the carried value went on {other}",
                    ["#", "entity", "category", "amount"], {"amount"})
        for i, f in flows[:top]:
            for e in entities(f["trace"])[:top]:
                et.add_row(str(i), str(e["entity"]), e["category"] or "", amount(f["trace"], e["amount"], e["asset"], True))
        out.append(et)
        for asset, t in (sec.get("totals", {}).get("deterministic" if det else "probabilistic") or {}).items():
            sub = flows[0][1]["trace"]
            out.append(Text(f"{name.lower()} on {other}: carried {amount(sub, int(t['carried']), asset, True)} = sinks "
                            f"{amount(sub, int(t['sinks']), asset)} + held {amount(sub, int(t['holdings']), asset)} + "
                            f"stopped {amount(sub, int(t['stopped']), asset)} + fees {amount(sub, int(t['fees']), asset)}"
                            + ("" if det else " (candidates x confidence, not proof)"), style="dim"))
        for i, f in flows:
            for e in f["trace"].explain:
                if not e.get("found"):
                    continue
                out.append(Text(f"explain {e['address']} on {other} (flow {i}, {name.lower()}, {f['rule']} "
                                f"{f['confidence']:.2f}): {e.get('note') or ''}", style="bold"))
                for j, p in enumerate(e["paths"]):
                    out.append(path_table(f["trace"], p, f"{e['address']} #{j + 1}: "
                                                         f"{amount(f['trace'], p.amount, p.asset, True)} ({p.kind})"))
    return out


def cross_chain_html(r: TraceReport, top: int = 20) -> str:
    from chaintrace.report.html import _amt, _id

    sec = r.cross_chain or {}
    other = sec.get("to_chain", "?")
    h = [f"<h2>Cross-chain: continued on {escape(other)} through bridges</h2>",
         f"<p class=muted>{escape(sec.get('note', ''))}. Conversion: {escape(sec.get('conversion', ''))}</p>",
         "<table><tr><th>deposit</th><th>bridge</th><th class=n>traced in</th><th class=n>crossed (deterministic)</th>"
         "<th class=n>crossed (probabilistic)</th><th class=n>kept</th></tr>"]
    for d in sec.get("deposits", []):
        h.append(f"<tr><td>{_id(d['ref'])}</td><td>{escape(d['label'] or d['address'] or '')}</td>"
                 + "".join(f"<td class=n>{_amt(r, int(d[k]), d['asset'])}</td>"
                           for k in ("traced_in", "crossed_deterministic", "crossed_probabilistic", "kept")) + "</tr>")
    h.append("</table>")
    for _det, name, flows in _kinds(sec):
        if not flows:
            continue
        h.append(f"<h3>{name.capitalize()} flows</h3><table><tr><th>#</th><th>deposit ({escape(r.chain)})</th>"
                 f"<th>release ({escape(other)})</th><th>recipient</th><th>rule</th><th class=n>confidence</th>"
                 "<th class=n>carried</th><th>reached</th></tr>")
        for i, f in flows[:top]:
            sub = f["trace"]
            reached = "; ".join(f"{escape(str(e['entity']))} {_amt(sub, e['amount'], e['asset'])}" for e in entities(sub)[:5])
            h.append(f"<tr><td>{i}</td><td>{_id(f['deposit']['ref'])}</td><td>{_id(f['release']['ref'] or f['release']['tx'])}</td>"
                     f"<td><code>{escape(f['release']['recipient'] or '')}</code></td><td>{escape(f['rule'])}</td>"
                     f"<td class=n>{f['confidence']:.2f}</td><td class=n>{_amt(sub, int(f['carried']), f['carried_asset'])}</td>"
                     f"<td>{reached}</td></tr>")
        h.append("</table>")
    return "".join(h)
