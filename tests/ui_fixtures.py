"""The web UI tests' workspace and browser: a simulated hack with keys of every role (and a partner
organisation's analyst), a TLP:RED tag only the server's own organisation may see, a real `chaintrace serve`,
and Playwright driving Debian's Chromium (never a downloaded browser)."""
from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.screen_fixtures import simulated_hack
from tests.screen_server import REPO, Server

AXE = REPO / "web" / "node_modules" / "axe-core" / "axe.min.js"
RED_LABEL = "Red-only informant OTC desk"
GREEN_LABEL = "Green shared watch label"


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        p = shutil.which(name)
        if p:
            return p
    pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")


def _tagpack(path: Path, address: str, label: str, category: str) -> Path:
    path.write_text(f'title: "{label}"\ncreator: "ui test"\ncurrency: "BTC"\nnetwork: "BTC"\nlastmod: 2024-01-01\n'
                    f'source: "ui-test://{category}"\ntags:\n- address: "{address}"\n  label: "{label}"\n'
                    f"  category: {category}\n  confidence: forensic\n")
    return path


def ui_workspace(root: Path) -> dict:
    """Workspace + keys + server; the red-tagged address is a launderer on the stolen coins' way."""
    from chaintrace import intel
    from chaintrace.api.keys import create_key

    ws, sim = simulated_hack(root, txs=1500, seed=5)
    from chaintrace.trace import trace

    seeds = [ln.strip() for ln in (sim / "stolen.txt").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    addrs = pq.read_table(sim / "addresses.parquet").to_pylist()
    launderers = {a["address"] for a in addrs if a["role"] == "launderer"}
    deposits = [a["address"] for a in addrs if a["role"] == "deposit"]
    on_path = [st.address for p in trace(ws, seeds, top_paths=50).paths for st in p.steps]
    red, green = next(a for a in on_path if a in launderers), deposits[0]
    intel.import_paths(ws, "tagpack", [_tagpack(root / "red.yaml", red, RED_LABEL, "otc_broker")], tlp="red")
    intel.import_paths(ws, "tagpack", [_tagpack(root / "green.yaml", green, GREEN_LABEL, "exchange")], tlp="green")
    keys = {r: create_key(ws, r, f"ui-{r}")["key"] for r in ("screener", "analyst", "admin")}
    keys["partner"] = create_key(ws, "analyst", "ui-partner", org="acme")["key"]
    srv = Server(ws.path, registry=intel.registry.as_registry(ws).path)
    return {"ws": ws, "sim": sim, "srv": srv, "keys": keys, "seeds": seeds, "red": red, "green": green,
            "truth": json.loads((sim / "truth.json").read_text())}


def pixel_stats(page, png: Path) -> dict:
    """Mean and variance of the grey levels of a saved screenshot, decoded by the browser itself."""
    b64 = base64.b64encode(png.read_bytes()).decode()
    return page.evaluate("""async (b64) => {
        const img = new Image(); img.src = 'data:image/png;base64,' + b64; await img.decode();
        const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
        const g = c.getContext('2d'); g.drawImage(img, 0, 0);
        const d = g.getImageData(0, 0, c.width, c.height).data;
        let n = 0, s = 0, s2 = 0;
        for (let i = 0; i < d.length; i += 16) { const v = (d[i] + d[i + 1] + d[i + 2]) / 3; n++; s += v; s2 += v * v; }
        const m = s / n; return { mean: m, variance: s2 / n - m * m, width: c.width, height: c.height };
    }""", b64)


def axe_violations(page) -> list[dict]:
    """axe-core (npm, injected into the page) violations of impact serious or critical."""
    if not AXE.is_file():
        pytest.skip(f"axe-core is not installed: run `npm ci --prefix web` ({AXE} missing)")
    page.add_script_tag(path=str(AXE))
    res = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
                        ".map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3)"
                        ".map(n => n.target.join(' '))}))")
    return [v for v in res if v["impact"] in ("serious", "critical")]
