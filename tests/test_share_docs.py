"""The runnable examples of docs/sharing.md (```sh blocks), in page order, with their key output checked."""
from __future__ import annotations

import json
import re
import shlex

from click.testing import CliRunner

from chaintrace.cli import main
from tests.conftest import DATASETS, REPO, dataset

# command prefix -> text its output must contain
EXPECT = {
    "chaintrace intel import ofac-sdn": "1 file(s) imported",
    "chaintrace share export --tlp green": "cryptocurrency-wallet",
    "chaintrace share export --incident ronin-2022 --out ronin": "1 incident",
    "chaintrace share export --format misp --incident ronin-2022": "wrote ronin.misp.json (misp)",
    "chaintrace share export --format misp-feed": "misp-feed",
    "chaintrace share import registry": "tags",
    "chaintrace share import misp-feed": "misp",
    "chaintrace intel lookup": "Lazarus",
    "chaintrace share keygen": "public key fiu.key.pub",
    "chaintrace share export --incident ronin-2022 --out signed": "signed: signed.stix.json.sig",
    "chaintrace share verify": "VALID",
    "chaintrace share import signed": "tags",
    "chaintrace share collection create": "3f9c2b4e-1d2a-4c5b-8e7f-0a1b2c3d4e5f",
    "chaintrace share collection list": "ISAC exchange",
}


def _examples() -> list[str]:
    text = (REPO / "docs" / "sharing.md").read_text()
    out = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, re.DOTALL | re.MULTILINE):
        out += [ln.strip() for ln in block.splitlines() if ln.strip().startswith("chaintrace ")]
    return out


def test_sharing_page_examples(tmp_path, monkeypatch):
    dataset("ofac-sdn", "ofac_sdn_digital_currency_addresses_2025-11-19.csv")
    (tmp_path / "shared").symlink_to(DATASETS.parent)
    cwd = tmp_path / "main"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("CHAINTRACE_DATA", str(tmp_path / "ws"))
    lines = _examples()
    assert len(lines) >= 12
    runner = CliRunner()
    checked = 0
    for line in lines:
        res = runner.invoke(main, shlex.split(line)[1:])
        assert res.exit_code == 0, f"{line}\n{res.output[-2000:]}"
        for prefix, want in EXPECT.items():
            if line.startswith(prefix):
                assert want in res.output, f"{line}: {want!r} not in\n{res.output[-1500:]}"
                checked += 1
    assert checked == len(EXPECT)
    bundle = json.loads((cwd / "registry.stix.json").read_text())
    assert any(o.get("value") == "0x098B716B8Aaf21512996dC57EB0615e2383E2f96" for o in bundle["objects"])
    assert (cwd / "misp-feed" / "manifest.json").exists() and (cwd / "signed.stix.json.sig").exists()
