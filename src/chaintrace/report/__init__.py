"""Renderings of analysis results for people and programs: text (Rich) and CSV (:mod:`.text`), the one-page HTML
trace summary (:mod:`.html`)."""
from chaintrace.report.html import render_html, write_html

__all__ = ["render_html", "write_html"]
