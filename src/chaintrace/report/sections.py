"""Sections of the report document beyond the trace itself (:mod:`.document`): the flow diagram, the policy
spread (the uncertainty of the attribution), the timeline, sanctions and attribution with the precision of
their dates, the case's screening results, notes and exhibits. Each function returns HTML strings; values are
escaped here, ids and amounts isolated left to right."""
from __future__ import annotations

import datetime as _dt
from html import escape

from chaintrace.report.i18n import T, digits
from chaintrace.report.svg import sankey_svg, timeline_svg
from chaintrace.report.text import amount
from chaintrace.trace.report import TraceReport, entities


def _ltr(text: str, cls: str = "") -> str:
    c = f' class="{cls}"' if cls else ""
    return f'<bdi dir="ltr"{c}>{escape(str(text))}</bdi>'


def _iso_ts(text: str | None) -> int | None:
    if not text:
        return None
    try:
        d = _dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=_dt.UTC)
    return int(d.timestamp())


def short_amount(r: TraceReport, v: int) -> str:
    """An amount rounded for a diagram label (tables carry the exact figures)."""
    a = r.asset
    dec = int(r.assets.get(a, {}).get("decimals", 0))
    x = v / 10**dec if dec else v
    return f"{x:,.2f} {r.asset_label(a)}" if dec else f"{x:,} {r.asset_label(a)}"


def flow_section(r: TraceReport, t: T, lang: str) -> list[str]:
    labels = {"seeded": t.plain("flow_seeded"), "sinks": t.plain("flow_sinks"), "holdings": t.plain("flow_held"),
              "stopped": t.plain("flow_stopped"), "fees": t.plain("flow_fees"), "other": t.plain("flow_other"),
              "title": t.plain("h_flow")}
    svg = sankey_svg(r, labels, lambda v: short_amount(r, v), rtl=lang == "ar")
    return [f'<section><h2>{t("h_flow")}</h2><p>{t("flow_intro")}</p>', svg or f"<p>{t('no_flow')}</p>", "</section>"]


def spread_section(r: TraceReport, spread: dict | None, t: T, lang: str, pct) -> list[str]:
    h = [f'<section><h2>{t("h_spread")}</h2>']
    if not spread:
        return h + [f'<p>{t("spread_not_run")}</p></section>']
    if spread.get("error"):
        return h + [f'<p class=warn>{t("spread_error")} {escape(spread["error"])}</p></section>']
    a = spread["asset"]

    def amt(v: int) -> str:
        return _ltr(f"{amount(r, v, a)} {r.asset_label(a)}")

    mn, mx = spread.get("min") or {}, spread.get("max") or {}
    if spread.get("note"):
        h.append(f'<p class=warn>{escape(spread["note"])}</p>')
    h.append(f'<table class=spread><tr><th>{t("policy")}</th><th class=n>{t("flow_sinks")}</th>'
             f'<th class=n>{t("flow_held")}</th><th class=n>{t("flow_stopped")}</th><th class=n>{t("flow_fees")}</th>'
             f'<th class=n>{t("services")}</th></tr>')
    for p in spread["policies"]:
        name = _ltr(p["name"]) + (f' ({t("this_report")})' if p["source"] == "report" else "")
        if not p["totals"]:
            h.append(f'<tr><td>{name}</td><td colspan=5>{t("not_run")}: {escape(p["error"] or "")}</td></tr>')
            continue
        x = p["totals"]
        h.append(f'<tr><td>{name}</td><td class=n>{amt(x["sinks"])} ({pct(x["sinks"], x["seeded"])})</td>'
                 f'<td class=n>{amt(x["holdings"])}</td><td class=n>{amt(x["stopped"])}</td>'
                 f'<td class=n>{amt(x["fees"])}</td><td class=n>{digits(str(x["entities"]), lang)}</td></tr>')
    if mn:
        h.append(f'<tr class=range><th>{t("range")}</th>' + "".join(
            f'<td class=n>{amt(mn[k])} –<br>{amt(mx[k])}</td>' for k in ("sinks", "holdings", "stopped", "fees"))
            + f'<td class=n>{digits(str(mn["entities"]), lang)} – {digits(str(mx["entities"]), lang)}</td></tr>')
    h.append("</table>")
    if spread.get("entities"):
        h.append(f'<h3>{t("spread_entities")}</h3><table><tr><th>{t("entity")}</th><th class=n>{t("minimum")}</th>'
                 f'<th class=n>{t("maximum")}</th></tr>')
        for e in spread["entities"]:
            h.append(f'<tr><td>{_ltr(e["entity"])}</td><td class=n>{amt(e["min"])}</td><td class=n>{amt(e["max"])}</td></tr>')
        h.append("</table>")
    return h + ["</section>"]


def _events(r: TraceReport, case: dict | None, attribution: dict | None, t: T) -> list[tuple[int, str, str]]:
    """(unix time, kind, HTML text) of the timeline, unsorted."""
    ev: list[tuple[int, str, str]] = []
    times = (r.coverage or {}).get("times") or {}
    if times.get("first") is not None:
        ev.append((int(times["first"]), "data", t("tl_data_begins")))
    if times.get("last") is not None:
        ev.append((int(times["last"]), "data", t("tl_data_ends")))
    first_steps = [p.steps[0].time for p in r.paths if p.steps and p.steps[0].time is not None]
    if first_steps:
        ev.append((min(first_steps), "trace", t("tl_first_move")))
    for e in [e for e in entities(r) if e["asset"] == r.asset][:10]:
        if e["first_time"] is not None:
            ev.append((int(e["first_time"]), "service", t("tl_reached", entity=_ltr(e["entity"]),
                                                          amount=_ltr(f"{amount(r, e['amount'], e['asset'])} {r.asset_label(e['asset'])}"))))
    for row in (attribution or {}).get("rows") or []:
        for s in row["sanctions"]:
            ts = _iso_ts(s.get("valid_from"))
            if ts:
                ev.append((ts, "sanction", t("tl_listed", address=_ltr(row["address"], "id"), list=escape(s["list"] or ""))))
            ts = _iso_ts(s.get("listed_date"))
            if ts:
                ev.append((ts, "sanction", t("tl_entry", entity=escape(s.get("entity") or ""), list=escape(s["list"] or ""))))
    for a in (case or {}).get("audit") or []:
        if a["action"] in ("opened", "note", "trace", "screen", "exhibit", "export", "status"):
            ts = _iso_ts(a["at"])
            if ts:
                ev.append((ts, "case", t("tl_case", action=escape(a["action"]), analyst=_ltr(a["analyst"] or ""))))
    return ev


def timeline_section(r: TraceReport, case: dict | None, attribution: dict | None, t: T, lang: str, fmt_date) -> list[str]:
    ev = sorted(_events(r, case, attribution, t), key=lambda e: e[0])
    h = [f'<section><h2>{t("h_timeline")}</h2>',
         timeline_svg([(ts, k) for ts, k, _ in ev], lambda x: fmt_date(x, lang), rtl=lang == "ar", title=t.plain("h_timeline")),
         f'<table><tr><th>{t("date")}</th><th>{t("event")}</th></tr>']
    for ts, _, text in ev:
        h.append(f"<tr><td>{fmt_date(ts, lang, True)}</td><td>{text}</td></tr>")
    h.append("</table></section>")
    return h


def attribution_section(attribution: dict | None, t: T, lang: str) -> list[str]:
    h = [f'<section><h2>{t("h_sanctions")}</h2>']
    if attribution is None:
        return h + [f'<p>{t("attr_not_run")}</p></section>']
    if attribution.get("error"):
        return h + [f'<p class=warn>{t("attr_error")} {escape(attribution["error"])}</p></section>']
    basis = attribution.get("basis") or {}
    lists = basis.get("lists") or []
    h.append(f'<p>{t("attr_intro", at=_ltr(basis.get("at") or "?"))}</p>')
    if lists:
        h.append("<ul>" + "".join(
            f'<li>{_ltr(x.get("list") or "")}: {t("snapshots", n=digits(str(x.get("snapshots")), lang))} '
            f'{_ltr(str(x.get("first")))} … {_ltr(str(x.get("latest")))}</li>' for x in lists) + "</ul>")
    for w in basis.get("warnings") or []:
        h.append(f"<p class=warn>{escape(w)}</p>")
    services = attribution.get("services") or []
    if services:
        h.append(f'<h3>{t("h_service_sources")}</h3><table><tr><th>{t("entity")}</th><th>{t("category")}</th>'
                 f'<th>{t("labels")}</th><th>{t("sources")}</th><th class=n>{t("addresses")}</th></tr>')
        for g in services:
            via = f' ({t("via_cluster", n=digits(str(g["via_cluster"]), lang))})' if g["via_cluster"] else ""
            h.append(f'<tr><td>{_ltr(g["entity"])}</td><td>{escape(g["category"] or "")}</td>'
                     f'<td>{"<br>".join(_ltr(x) for x in g["labels"])}</td>'
                     f'<td>{"<br>".join(_ltr(x) for x in g["sources"])}{via}</td>'
                     f'<td class=n>{digits(str(g["addresses"]), lang)}</td></tr>')
        h.append("</table>")
    rows = attribution.get("rows") or []
    h.append(f'<h3>{t("h_registry")}</h3>')
    if not rows:
        return h + [f'<p>{t("attr_none")}</p></section>']
    h.append(f'<table><tr><th>{t("address")}</th><th>{t("role")}</th><th>{t("sanctioned")}</th>'
             f'<th>{t("attribution_sources")}</th></tr>')
    for row in rows:
        state = {True: t("yes"), False: t("no"), None: t("unknown")}[row["sanctioned"]]
        cell = []
        for s in row["sanctions"]:
            cell.append(f'<div><b>{_ltr(s["list"] or "")}</b>: {escape(s.get("entity") or "")} '
                        f'{_ltr(", ".join(s.get("programs") or []))}<br><span class=prec>{t("date_precision")}: '
                        f'{_ltr("; ".join(s["precision"]))}</span></div>')
        for tg in row["tags"]:
            cell.append(f'<div>{escape(tg.get("label") or "")} ({escape(tg.get("category") or "")}) — '
                        f'{t("source")}: {_ltr(tg.get("source") or "?")}</div>')
        for i in row["incidents"]:
            cell.append(f'<div>{escape(i.get("title") or i.get("incident_id") or "")} ({_ltr(i.get("date") or "?")}, '
                        f'{escape(i.get("role") or "")}) — {t("source")}: {_ltr(i.get("source") or "?")}</div>')
        h.append(f'<tr><td>{_ltr(row["address"], "id")}</td><td>{t("role_" + row["role"])}</td>'
                 f'<td>{state}<br><small>{_ltr(row.get("sanction_reason") or "")}</small></td><td>{"".join(cell)}</td></tr>')
    h.append("</table></section>")
    return h


def screening_section(screens: list[dict], t: T, lang: str) -> list[str]:
    h = [f'<section><h2>{t("h_screening")}</h2>']
    if not screens:
        return h + [f'<p>{t("screen_none")}</p></section>']
    for s in screens:
        dv = s.get("data_version") or {}
        h.append(f'<h3>{_ltr(s["at"])} — {_ltr(s["analyst"] or "")} ({t("screen_ran") if s.get("ran") else t("screen_added")})'
                 f'</h3><p>{t("data_version")}: {_ltr(", ".join(f"{k} {v}" for k, v in dv.items() if not isinstance(v, (dict, list))))}'
                 f'; sha256 {_ltr(s["sha256"], "id")}</p><table><tr><th>{t("subject")}</th><th>{t("risk")}</th>'
                 f'<th class=n>{t("score")}</th><th>{t("notes")}</th></tr>')
        for res in ((s.get("answer") or {}).get("results") or [])[:50]:
            notes = "; ".join(str(w) for w in (res.get("warnings") or []))
            if res.get("sanctions"):
                notes = f"{t.plain('sanctioned')}: {len(res['sanctions'])}; " + notes
            h.append(f'<tr><td>{_ltr(res.get("subject") or "", "id")}</td><td>{escape(str(res.get("risk")))}</td>'
                     f'<td class=n>{digits(str(res.get("score")), lang)}</td><td>{escape(notes)}</td></tr>')
        h.append("</table>")
    return h + ["</section>"]


def notes_section(case: dict, t: T, lang: str, fmt_date) -> list[str]:
    h = [f'<section><h2>{t("h_notes")}</h2>']
    notes = case.get("notes") or []
    if not notes:
        h.append(f'<p>{t("notes_none")}</p>')
    for n in notes:
        h.append(f'<blockquote><p>{escape(n["text"])}</p><footer>— {_ltr(n["analyst"] or "")}, '
                 f'{fmt_date(_iso_ts(n["at"]), lang, True)}</footer></blockquote>')
    ex = case.get("exhibits") or []
    if ex:
        h.append(f'<h3>{t("h_exhibits")}</h3><table><tr><th>{t("name")}</th><th>{t("description")}</th>'
                 f'<th class=n>{t("bytes")}</th><th>SHA-256</th></tr>')
        for e in ex:
            h.append(f'<tr><td>{_ltr(e["name"])}</td><td>{escape(e.get("description") or "")}</td>'
                     f'<td class=n>{_ltr(format(e["bytes"], ","))}</td><td>{_ltr(e["sha256"], "id")}</td></tr>')
        h.append("</table>")
    return h + ["</section>"]
