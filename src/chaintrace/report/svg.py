"""Diagrams of a report document as inline SVG, drawn here (server side) so that HTML and PDF carry them
without scripts or a network: the flow of the traced value (a Sankey diagram: seeds -> what became of the
value -> the services that received it) and a timeline strip.

Layout is a pure function of integer amounts; the drawing scales them to pixels only. ``rtl=True`` mirrors
the diagram so it reads from the right (Arabic).
"""
from __future__ import annotations

from dataclasses import dataclass
from html import escape

from chaintrace.trace.report import TraceReport, entities

W, NODE_W, GAP = 760, 14, 10
COLS = (8, 300, 520)
COLOURS = {"seed": "#7a4cc2", "sinks": "#c2410c", "holdings": "#0f766e", "stopped": "#6b7280", "fees": "#a16207",
           "service": "#c2410c", "other": "#9a3412"}


@dataclass
class Node:
    key: str
    label: str
    value: int
    col: int
    kind: str
    y: float = 0.0
    h: float = 0.0


def flows_of(report: TraceReport, labels: dict[str, str], top: int = 8) -> tuple[list[Node], list[tuple[str, str, int]]]:
    """Nodes and flows (source key, target key, base units) of the main asset: seeds -> reached services /
    still held / not followed / fees -> the `top` services (the rest as one node). Flows into and out of every
    middle node are equal (the value invariant), so the diagram shows exact shares."""
    a = report.asset
    t = report.totals(a)
    nodes = [Node("seed", labels["seeded"], int(t["seeded"]), 0, "seed")]
    flows = []
    for k in ("sinks", "holdings", "stopped", "fees"):
        if t[k] > 0:
            nodes.append(Node(k, labels[k], int(t[k]), 1, k))
            flows.append(("seed", k, int(t[k])))
    ents = [e for e in entities(report) if e["asset"] == a]
    for i, e in enumerate(ents[:top]):
        nodes.append(Node(f"e{i}", str(e["entity"]), int(e["amount"]), 2, "service"))
        flows.append(("sinks", f"e{i}", int(e["amount"])))
    rest = sum(int(e["amount"]) for e in ents[top:])
    if rest:
        nodes.append(Node("rest", labels["other"].format(n=len(ents) - top), rest, 2, "other"))
        flows.append(("sinks", "rest", rest))
    return nodes, flows


def _layout(nodes: list[Node], height: float) -> None:
    total = max(sum(n.value for n in nodes if n.col == 0), 1)
    for col in (0, 1, 2):
        ns = [n for n in nodes if n.col == col]
        avail = height - GAP * max(len(ns) - 1, 0)
        y = 0.0
        for n in ns:
            n.h = max(avail * n.value / total, 1.5)
            n.y = y
            y += n.h + GAP


def sankey_svg(report: TraceReport, labels: dict[str, str], fmt_amount, rtl: bool = False, top: int = 8) -> str:
    """The flow diagram as an ``<svg>`` element. `labels`: words for seeded, sinks, holdings, stopped, fees,
    other ("{n} other services"), title; `fmt_amount(int) -> str` writes an amount."""
    nodes, flows = flows_of(report, labels, top)
    if nodes[0].value <= 0:
        return ""
    height = 40.0 * max(len([n for n in nodes if n.col == 2]), 4)
    _layout(nodes, height)
    by = {n.key: n for n in nodes}
    out_off = {n.key: 0.0 for n in nodes}
    in_off = {n.key: 0.0 for n in nodes}
    pad = 24

    def X(x: float) -> float:
        return W - x if rtl else x

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="sankey" role="img" viewBox="0 0 {W} {height + 2 * pad:.0f}"'
             f' width="100%" aria-label="{escape(labels["title"])}"><title>{escape(labels["title"])}</title>']
    for s, d, v in flows:
        a, b = by[s], by[d]
        if a.value <= 0:
            continue
        th = max(a.h * v / a.value, 0.8)
        x0, x1 = COLS[a.col] + NODE_W, COLS[b.col]
        y0, y1 = pad + a.y + out_off[s], pad + b.y + in_off[d]
        out_off[s] += th
        in_off[d] += th
        xm = (x0 + x1) / 2
        parts.append(f'<path d="M{X(x0):.1f},{y0:.1f} C{X(xm):.1f},{y0:.1f} {X(xm):.1f},{y1:.1f} {X(x1):.1f},{y1:.1f} '
                     f'L{X(x1):.1f},{y1 + th:.1f} C{X(xm):.1f},{y1 + th:.1f} {X(xm):.1f},{y0 + th:.1f} '
                     f'{X(x0):.1f},{y0 + th:.1f} Z" fill="{COLOURS.get(b.kind, "#888")}" fill-opacity="0.35"/>')
    for n in nodes:
        x = COLS[n.col]
        rx = X(x + NODE_W) if rtl else x
        parts.append(f'<rect x="{rx:.1f}" y="{pad + n.y:.1f}" width="{NODE_W}" height="{n.h:.1f}" '
                     f'fill="{COLOURS.get(n.kind, "#888")}"/>')
        tx = X(x + NODE_W + 5)
        anchor = "end" if rtl else "start"
        ty = pad + n.y + n.h / 2
        parts.append(f'<text x="{tx:.1f}" y="{ty - 2:.1f}" text-anchor="{anchor}" font-size="10.5" '
                     f'direction="{"rtl" if rtl else "ltr"}" unicode-bidi="plaintext">{escape(n.label[:60])}</text>'
                     f'<text x="{tx:.1f}" y="{ty + 10:.1f}" text-anchor="{anchor}" font-size="9.5" fill="#444" '
                     f'direction="ltr" unicode-bidi="embed">{escape(fmt_amount(n.value))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def timeline_svg(points: list[tuple[int, str]], fmt_date, rtl: bool = False, title: str = "timeline") -> str:
    """A strip with one tick per event time (`points`: (unix time, kind)) between the first and last date."""
    ts = sorted(t for t, _ in points if t is not None)
    if not ts:
        return ""
    lo, hi = ts[0], ts[-1]
    span = max(hi - lo, 1)
    x0, x1, h = 30, W - 30, 70

    def X(t: int) -> float:
        x = x0 + (x1 - x0) * (t - lo) / span
        return W - x if rtl else x

    colour = {"data": "#6b7280", "service": "#c2410c", "sanction": "#b42318", "case": "#1d4ed8", "trace": "#7a4cc2"}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" role="img" viewBox="0 0 {W} {h}" '
             f'width="100%" aria-label="{escape(title)}"><title>{escape(title)}</title>'
             f'<line x1="{x0}" y1="30" x2="{x1}" y2="30" stroke="#1d2733" stroke-width="1.2"/>']
    for t, kind in points:
        if t is None:
            continue
        parts.append(f'<circle cx="{X(t):.1f}" cy="30" r="4" fill="{colour.get(kind, "#444")}" fill-opacity="0.8"/>')
    for t, anchor in ((lo, "start"), (hi, "end")):
        a = {"start": "end", "end": "start"}[anchor] if rtl else anchor
        parts.append(f'<text x="{X(t):.1f}" y="55" text-anchor="{a}" font-size="10" '
                     f'direction="{"rtl" if rtl else "ltr"}">{escape(fmt_date(t))}</text>')
    parts.append("</svg>")
    return "".join(parts)
