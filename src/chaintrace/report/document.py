"""Regulator-grade trace report documents in English and Arabic (HTML; PDF through :mod:`.pdf`).

:func:`render_document` turns one :class:`~chaintrace.trace.report.TraceReport` into a self-contained HTML
document (no scripts, no network): cover (data version and dates), a summary in plain words, method and
policies, coverage and caveats (the evidence block of :mod:`chaintrace.trace.evidence`), the cash-out table
with the evidence path of each of the largest transfers, and an appendix of every identifier cited
(synthesised ids marked as such). Arabic (``lang="ar"``) is laid out right to left (``dir="rtl"``, Arabic
fonts), with Arabic month names and Arabic-Indic digits in dates, counts and percentages; addresses,
transaction ids and amounts stay left to right, isolated in ``<bdi dir="ltr">``, and amounts keep Western
digits so they can be copied exactly.
"""
from __future__ import annotations

from datetime import datetime, timezone
from html import escape
from pathlib import Path

from chaintrace.model.ids import SYNTHETIC_NOTE, is_synthetic_txid
from chaintrace.report.i18n import MONTHS_AR, T, digits
from chaintrace.report.sections import (_iso_ts, attribution_section, flow_section, notes_section, screening_section,
                                        spread_section, timeline_section)
from chaintrace.report.text import amount, evidence_lines, policy_text
from chaintrace.trace.report import TraceReport, entities, stopped_by_reason

LANGS = ("en", "ar")

CSS = """
@page{size:A4;margin:16mm 14mm}
body{font:11pt/1.5 "Noto Sans","Noto Naskh Arabic","Amiri",sans-serif;color:#1d2733;margin:0}
html[dir=rtl] body{font-family:"Noto Naskh Arabic","Amiri","Noto Sans Arabic",sans-serif}
h1{font-size:20pt;margin:0 0 .3em}h2{font-size:14pt;margin:1.2em 0 .4em;border-bottom:1px solid #c8d0da}
.cover{page-break-after:always;padding-top:30mm}.cover dl{display:grid;grid-template-columns:auto 1fr;gap:.3em 1em}
.cover dt{font-weight:700}.warn{background:#fff1f0;border:1px solid #f5b5b0;padding:.4em .7em}
table{border-collapse:collapse;width:100%;margin:.3em 0;font-size:9.5pt}
th,td{padding:.2em .4em;border-bottom:1px solid #e6eaef;text-align:start;vertical-align:top}
th{background:#f3f5f8}td.n{text-align:end;white-space:nowrap}
bdi.id{font:8.5pt "DejaVu Sans Mono",monospace;word-break:break-all}.syn{color:#b42318;font-weight:700}
section{page-break-inside:auto}
table.spread{table-layout:fixed;font-size:8.5pt}table.spread td.n{white-space:normal;overflow-wrap:anywhere}
svg.sankey,svg.timeline{display:block;margin:.4em 0;page-break-inside:avoid}
blockquote{margin:.4em 1em;padding:.2em .8em;border-inline-start:3px solid #c8d0da}
.prec{font-size:8.5pt;color:#4a5563}
"""


def _ltr(text: str, cls: str = "") -> str:
    """Left-to-right isolated text (ids, amounts) that stays intact inside right-to-left Arabic."""
    c = f' class="{cls}"' if cls else ""
    return f'<bdi dir="ltr"{c}>{escape(text)}</bdi>'


def _id(ident: str | None, t: T) -> str:
    if not ident:
        return ""
    if is_synthetic_txid(ident):
        return f'{_ltr(ident, "id")} <span class=syn title="{escape(SYNTHETIC_NOTE)}">[{t("synthesised")}]</span>'
    return _ltr(ident, "id")


def fmt_date(ts: int | None, lang: str, with_time: bool = False) -> str:
    """A UTC date for the reader: ``2022-03-29`` (en) or ``٢٩ مارس ٢٠٢٢`` (ar)."""
    if ts is None:
        return "?"
    d = datetime.fromtimestamp(int(ts), timezone.utc)
    hm = d.strftime(" %H:%M UTC") if with_time else ""
    if lang == "ar":
        return digits(f"{d.day} {MONTHS_AR[d.month - 1]} {d.year}{hm}", lang)
    return d.strftime("%d %B %Y") + hm


def _pct(v: int, total: int, lang: str) -> str:
    if not total:
        return ""
    s = f"{100 * v / total:.2f}"
    return digits(s, lang).replace(".", "٫") + "٪" if lang == "ar" else s + "%"


def _amt(r: TraceReport, v: int, asset: str | None = None) -> str:
    a = asset or r.asset
    return _ltr(f"{amount(r, v, a)} {r.asset_label(a)}")


def _summary(r: TraceReport, t: T, lang: str) -> list[str]:
    a = r.asset
    tot = r.totals(a)
    held_at = (r.coverage or {}).get("held_as_of") or {}
    n = digits(str(len(r.seeds)), lang)
    out = [t("summary_seeded", amount=_amt(r, tot["seeded"]), n=n),
           t("summary_sinks", amount=_amt(r, tot["sinks"]), pct=_pct(tot["sinks"], tot["seeded"], lang),
             n=digits(str(len(entities(r))), lang)),
           t("summary_held", amount=_amt(r, tot["holdings"]), pct=_pct(tot["holdings"], tot["seeded"], lang),
             date=fmt_date(held_at.get("time"), lang), height=digits(str(held_at.get("height")), lang))]
    for reason, v in stopped_by_reason(r).items():
        out.append(t("summary_stopped", amount=_amt(r, v), pct=_pct(v, tot["seeded"], lang), reason=_ltr(reason)))
    if (r.coverage or {}).get("partial_seed"):
        miss = sum(int(s["missing"]) for s in r.coverage["seeds"] if s.get("partial"))
        out.append(f'<p class=warn>{t("summary_partial", amount=_amt(r, miss))}</p>')
    if r.partial:
        out.append(f'<p class=warn>{t("partial_result")} {escape(r.partial_reason or "")}</p>')
    return [x if x.startswith("<p") else f"<p>{x}</p>" for x in out]


def _spread_sentence(r: TraceReport, spread: dict | None, t: T, lang: str) -> list[str]:
    ok = [p for p in (spread or {}).get("policies") or [] if p["totals"]]
    if len(ok) < 2:
        return []
    a = (spread or {})["asset"]
    lo = min(ok, key=lambda p: p["totals"]["sinks"])
    hi = max(ok, key=lambda p: p["totals"]["sinks"])
    lo_h = min(ok, key=lambda p: p["totals"]["holdings"])["totals"]["holdings"]
    hi_h = max(ok, key=lambda p: p["totals"]["holdings"])["totals"]["holdings"]
    words = {"n": digits(str(len(ok)), lang), "lo": _amt(r, lo["totals"]["sinks"], a), "lo_p": _ltr(lo["name"]),
             "hi": _amt(r, hi["totals"]["sinks"], a), "hi_p": _ltr(hi["name"]), "held_lo": _amt(r, lo_h, a),
             "held_hi": _amt(r, hi_h, a)}
    return [f'<p>{t("spread_summary", **words)}</p>']


def _cashout(r: TraceReport, t: T, lang: str) -> list[str]:
    h = [f'<h2>{t("h_cashout")}</h2><table><tr><th>{t("entity")}</th><th>{t("category")}</th>'
         f'<th class=n>{t("amount")}</th><th class=n>{t("share")}</th><th>{t("first_seen")}</th>'
         f'<th class=n>{t("transfers")}</th></tr>']
    ents = entities(r)
    for e in ents[:60]:
        h.append(f'<tr><td>{_ltr(e["entity"])}</td><td>{escape(e["category"] or "")}</td>'
                 f'<td class=n>{_amt(r, e["amount"], e["asset"])}</td>'
                 f'<td class=n>{_pct(e["amount"], r.total_seeded.get(e["asset"], 0), lang)}</td>'
                 f'<td>{fmt_date(e["first_time"], lang)}</td><td class=n>{digits(str(e["transfers"]), lang)}</td></tr>')
    if not ents:
        h.append(f'<tr><td colspan=6>{t("no_sinks")}</td></tr>')
    h.append("</table>")
    for i, p in enumerate(r.paths):
        h.append(f'<h3>{t("path_n", n=digits(str(i + 1), lang))}: {_amt(r, p.amount, p.asset)} → '
                 f'{_id(p.to, t)}</h3><table><tr><th class=n>{t("hop")}</th><th>{t("transaction")}</th>'
                 f'<th>{t("address")}</th><th class=n>{t("traced")}</th><th>{t("time")}</th></tr>')
        for s in p.steps:
            h.append(f'<tr><td class=n>{digits(str(s.hop), lang)}</td><td>{_id(s.ref, t)}</td>'
                     f'<td>{_id(s.address, t)} {escape(s.label or "")}</td><td class=n>{_amt(r, s.amount, p.asset)}'
                     f'</td><td>{fmt_date(s.time, lang, True)}</td></tr>')
        h.append("</table>")
    return h


def _identifiers(r: TraceReport) -> tuple[list[str], list[str]]:
    addrs: set[str] = set()
    txs: set[str] = set()
    for sd in r.seeds:
        if sd.kind == "address":
            addrs.add(sd.spec)
        elif sd.kind in ("tx", "output"):
            txs.add(sd.spec.split(":")[0])
    for sk in r.sinks[:200]:
        addrs.add(sk.address)
        txs.add(sk.txid)
    for h in r.holdings[:200]:
        if h.address:
            addrs.add(h.address)
        txs.add(h.ref.split(":")[0])
    for p in list(r.paths) + [p for e in r.explain for p in e["paths"]]:
        for st in p.steps:
            txs.add(st.txid)
            if st.address:
                addrs.add(st.address)
    txs.discard("")
    return sorted(addrs), sorted(txs)


def _case_cover(case: dict, t: T, lang: str) -> str:
    analysts = sorted({a["analyst"] for a in case.get("audit", []) if a.get("analyst")})
    return (f'<dt>{t("case")}</dt><dd>{_ltr(case["id"])} — {escape(case["title"])} ({t("status_" + case["status"])})</dd>'
            f'<dt>{t("analysts")}</dt><dd>{", ".join(_ltr(a) for a in analysts)}</dd>'
            f'<dt>{t("case_dates")}</dt><dd>{t("opened")} {fmt_date(_iso_ts(case["created_at"]), lang)}; '
            f'{t("last_entry")} {fmt_date(_iso_ts(case["audit"][-1]["at"]) if case.get("audit") else None, lang, True)}'
            f'</dd>')


def _case_section(case: dict, t: T, lang: str) -> list[str]:
    h = [f'<section><h2>{t("h_case")}</h2><table><tr><th>#</th><th>{t("time")}</th><th>{t("analyst")}</th>'
         f'<th>{t("action")}</th><th></th></tr>']
    for a in case.get("audit", []):
        d = a.get("detail") or {}
        what = d.get("text") or (f'{d.get("file")} sha256 {d.get("sha256")}' if a["action"] == "trace" else
                                 ", ".join(f"{k}: {v}" for k, v in d.items() if not isinstance(v, (dict, list))))
        h.append(f'<tr><td>{digits(str(a["seq"]), lang)}</td><td>{_ltr(a["at"])}</td><td>{_ltr(a["analyst"] or "")}'
                 f'</td><td>{escape(a["action"])}</td><td>{escape(str(what))}</td></tr>')
    h.append("</table></section>")
    return h


def render_document(report: TraceReport, lang: str = "en", title: str | None = None, case: dict | None = None,
                    context: dict | None = None) -> str:
    """The report document of `report` in `lang` (``en`` or ``ar``) as one HTML page (see the module doc);
    with `case` (:func:`chaintrace.report.cases.get`), the cover names the case, its analysts and dates, and
    sections give its screening results, notes, exhibits and audit trail. `context`
    (:func:`chaintrace.report.context.case_context`) adds the policy spread and the sanctions and attribution
    of the addresses cited; without it those sections say they were not computed."""
    if lang not in LANGS:
        raise ValueError(f"language {lang!r}: choose from {', '.join(LANGS)}")
    r, t = report, T(lang)
    c = r.coverage or {}
    times, heights = c.get("times") or {}, c.get("heights") or {}
    now = int(datetime.now(timezone.utc).timestamp())
    title = title or (case["title"] if case else t("title", chain=r.chain))
    block_range = f"{heights.get('first')}..{heights.get('last')}"
    chain_net = f"{r.chain} ({r.network})"
    h = [f'<!doctype html><html lang="{lang}" dir="{"rtl" if lang == "ar" else "ltr"}"><head><meta charset="utf-8">'
         f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
         f'<section class=cover><h1>{escape(title)}</h1><dl>{_case_cover(case, t, lang) if case else ""}'
         f'<dt>{t("generated")}</dt><dd>{fmt_date(now, lang, True)}</dd>'
         f'<dt>{t("data_version")}</dt><dd>{_ltr(r.schema)}; {t("blocks")} {_ltr(block_range)}'
         f'{" (" + t("synthetic") + ")" if heights.get("synthetic") else ""}</dd>'
         f'<dt>{t("data_dates")}</dt><dd>{fmt_date(times.get("first"), lang)} – {fmt_date(times.get("last"), lang)}</dd>'
         f'<dt>{t("sources")}</dt><dd>{"<br>".join(_ltr(s) for s in c.get("sources") or []) or t("unknown")}</dd>'
         f'<dt>{t("chain")}</dt><dd>{_ltr(chain_net)}</dd>'
         f'<dt>{t("policy")}</dt><dd>{_ltr(policy_text(r))}</dd></dl></section>']
    ctx = context or {}
    spread = ctx.get("spread")
    h.append(f'<section><h2>{t("h_summary")}</h2>')
    h += _summary(r, t, lang)
    h += _spread_sentence(r, spread, t, lang)
    h.append("</section>")
    asm = r.assumptions or {}
    pol = (asm.get("policy") or {}).get("name") or r.policy.get("name")
    h.append(f'<section><h2>{t("h_method")}</h2><p>{t("method_intro")}</p>'
             f'<p>{t("policy")}: {_ltr(policy_text(r))} — {t("policy_" + str(pol))}</p>'
             f'<p>{t("invariant")}</p><table>')
    for k, v in (asm.get("thresholds") or r.limits).items():
        h.append(f"<tr><th>{_ltr(k)}</th><td>{_ltr(str(v) if v is not None else '—')}</td></tr>")
    h.append("</table></section>")
    h += spread_section(r, spread, t, lang, lambda v, tot: _pct(v, tot, lang))
    h.append(f'<section><h2>{t("h_coverage")}</h2><p>{t("coverage_intro")}</p><table>')
    for k, v in evidence_lines(r):
        h.append(f'<tr><th>{t("ev_" + k.lower().replace(" ", "_"))}</th><td{" class=warn" if k.isupper() else ""}>'
                 f"{_ltr(v)}</td></tr>")
    h.append("</table></section>")
    h += flow_section(r, t, lang)
    h += timeline_section(r, case, ctx.get("attribution"), t, lang, fmt_date)
    h.append("<section>")
    h += _cashout(r, t, lang)
    h.append("</section>")
    h += attribution_section(ctx.get("attribution"), t, lang)
    if case:
        h += screening_section(ctx.get("screens") or [], t, lang)
        h += notes_section(case, t, lang, fmt_date)
        h += _case_section(case, t, lang)
    addrs, txs = _identifiers(r)
    h.append(f'<section><h2>{t("h_appendix")}</h2><p>{t("appendix_intro")}</p><h3>{t("addresses")} '
             f'({digits(str(len(addrs)), lang)})</h3><ul>')
    h += [f"<li>{_id(a, t)}</li>" for a in addrs]
    h.append(f'</ul><h3>{t("transactions")} ({digits(str(len(txs)), lang)})</h3><ul>')
    h += [f"<li>{_id(x, t)}</li>" for x in txs]
    h.append("</ul></section></body></html>")
    return "".join(h)


def write_document(report: TraceReport, out: str | Path, lang: str = "en", fmt: str = "html",
                   title: str | None = None, case: dict | None = None, context: dict | None = None) -> Path:
    """Write the report document to `out` as ``html`` or ``pdf`` (headless Chromium, :mod:`.pdf`)."""
    out = Path(out)
    html = render_document(report, lang, title, case, context)
    if fmt == "html":
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(out)
        return out
    if fmt == "pdf":
        from chaintrace.report.pdf import html_to_pdf

        return html_to_pdf(html, out)
    raise ValueError(f"format {fmt!r}: choose html or pdf")
