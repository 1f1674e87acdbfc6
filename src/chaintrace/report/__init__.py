"""Human-facing report documents built from analysis results (the one-page HTML trace summary)."""
from chaintrace.report.html import render_html, write_html

__all__ = ["render_html", "write_html"]
