"""HTML -> PDF through headless Chromium (Debian's ``chromium``): its text shaping handles Arabic right to
left, which WeasyPrint does poorly. The browser runs with a throw-away profile and no network use (the
document is self-contained)."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from chaintrace.errors import UserError

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_browser() -> str:
    """The Chromium executable (``CHAINTRACE_CHROMIUM`` or the first of :data:`BROWSERS` on PATH)."""
    env = os.environ.get("CHAINTRACE_CHROMIUM")
    if env:
        return env
    for b in BROWSERS:
        p = shutil.which(b)
        if p:
            return p
    raise UserError("PDF needs headless Chromium: install it (Debian: apt-get install -y chromium) or set "
                    "CHAINTRACE_CHROMIUM to its path; --format html works without it")


def html_to_pdf(html: str, out: str | Path, timeout: int = 180) -> Path:
    """Print `html` to the PDF file `out` (A4, no header/footer) with headless Chromium."""
    out = Path(out).resolve()
    browser = find_browser()
    with tempfile.TemporaryDirectory(prefix="chaintrace-pdf-") as tmp:
        src = Path(tmp) / "report.html"
        src.write_text(html, encoding="utf-8")
        part = out.with_name(out.name + ".tmp")
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", "--no-default-browser-check", f"--user-data-dir={tmp}/profile",
               "--no-pdf-header-footer", f"--print-to-pdf={part}", src.as_uri()]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise UserError(f"{browser} did not finish printing {out.name} within {timeout} s") from None
        if res.returncode != 0 or not part.exists() or part.stat().st_size == 0:
            part.unlink(missing_ok=True)
            raise UserError(f"{browser} could not print the PDF (exit {res.returncode}): "
                            f"{(res.stderr or '').strip()[-400:]}")
        part.replace(out)
    return out
