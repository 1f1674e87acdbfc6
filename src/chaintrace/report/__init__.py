"""Renderings of analysis results for people and programs: text (Rich) and CSV (:mod:`.text`), the one-page HTML
trace summary (:mod:`.html`), report documents in English and Arabic, HTML or PDF (:mod:`.document`,
:mod:`.pdf`)."""
from chaintrace.report.document import render_document, write_document
from chaintrace.report.html import render_html, write_html

__all__ = ["render_html", "write_html", "render_document", "write_document"]
