"""Honest evidence in trace reports (issue 16, part 1): coverage, assumptions, synthesised ids, partial seeds.

On the real Dune export of transfers into the Lazarus/Ronin addresses (which lacks the theft itself) and on the
Bitcoin simulator (complete data)."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import unicodedata
from decimal import Decimal

import pytest
from click.testing import CliRunner

from chaintrace.chains.eth import ingest_transfer_list
from chaintrace.cli import main
from chaintrace.model.ids import is_synthetic_txid
from chaintrace.report.html import render_html
from chaintrace.report.text import to_csv, to_text
from chaintrace.sim import load_truth
from chaintrace.store.workspace import Workspace
from chaintrace.trace import trace
from chaintrace.trace.report import TraceReport, check_invariant
from tests.conftest import dataset, peel_chain_trace

RONIN = "0x098b716b8aaf21512996dc57eb0615e2383e2f96"


@pytest.fixture(scope="module")
def lazarus(tmp_path_factory):
    p = dataset("lazarus-eth-dune-dspytdao", "LazarusTabularTxs1322519.csv")
    rows = []
    with open(p, newline="") as fh:
        for r in csv.DictReader(fh):
            rows.append((r["block_time"], r["from"].replace("\\x", "0x").lower(),
                         r["to"].replace("\\x", "0x").lower(), int(Decimal(r["total_eth"]) * 10**18)))
    root = tmp_path_factory.mktemp("lazev")
    ws = Workspace(root / "data")
    ingest_transfer_list(ws, p)
    r = trace(ws, [RONIN], chain="eth", policy="haircut", min_value=0, explain=[RONIN])
    return {"ws": ws, "rows": rows, "report": r, "root": root, "path": p}


def test_partial_seed_is_measured_against_the_file(lazarus):
    r, rows = lazarus["report"], lazarus["rows"]
    check_invariant(r)
    received = sum(v for _, _, t, v in rows if t == RONIN)
    sent = sum(v for _, f, _, v in rows if f == RONIN)
    assert sent > received  # the export lacks the theft that funded the exploiter
    c = r.coverage
    assert c["partial_seed"] is True
    seed, = c["seeds"]
    assert (int(seed["received_in_data"]), int(seed["sent_in_data"])) == (received, sent)
    assert int(seed["missing"]) == sent - received
    assert 173_000 * 10**18 < sent - received < 174_000 * 10**18  # ~173,600 ETH stolen, not in the data
    assert "theft itself is not in the data" in c["partial_seed_note"]
    assert r.assumptions["opening_balance"]["seeds"] == {RONIN: str(sent - received)}
    assert r.assumptions["opening_balance"]["debits"] == r.stats["opening_balance_assumed"] > 0


def test_coverage_names_range_source_and_horizon(lazarus):
    r, rows = lazarus["report"], lazarus["rows"]
    c = r.coverage
    times = sorted(rows)
    assert c["times"]["first_iso"][:10] == times[0][0][:10] and c["times"]["last_iso"][:10] == times[-1][0][:10]
    assert c["heights"]["synthetic"] is True and c["heights"]["first"] == 0
    assert c["sources"] == [str(lazarus["path"].resolve())]
    assert c["held_as_of"]["height"] == c["heights"]["last"]
    assert f"synthetic block {c['heights']['last']}" in c["held_means"]
    assert c["synthetic_txids"] == len(rows)  # the export has no hash column
    assert r.assumptions["policy"]["name"] == "haircut" and r.assumptions["thresholds"]["min_value"] == 0


def test_every_format_says_partial_and_marks_synthesised_ids(lazarus):
    r = lazarus["report"]
    d = json.loads(r.to_json())
    assert d["coverage"]["partial_seed"] and d["assumptions"]["opening_balance"]["debits"]
    refs = [h["ref"] for h in d["holdings"]] + [s["ref"] for e in d["explain"] for p in e["paths"] for s in p["steps"]]
    assert refs and all(is_synthetic_txid(x) for x in refs)
    assert all(h.get("synthetic_id") is True for h in d["holdings"])
    back = TraceReport.from_dict(d)
    assert back.coverage == r.coverage and back.assumptions == r.assumptions
    text = to_text(back, width=400)
    assert "PARTIAL SEED" in text and "theft itself is not in the data" in text
    assert f"still held (unmoved as of synthetic block {r.coverage['heights']['last']}" in text
    assert "262 debits" in text or f"{r.stats['opening_balance_assumed']} debits" in text
    assert f"{r.holdings[0].ref} [synthesised]" in text
    html = render_html([back])
    assert "Partial seed:" in html and "theft itself is not in the data" in html
    assert html.count("[synthesised]") >= min(10, len(r.holdings))
    assert "not an on-chain id" in html
    assert "synthetic_id" in to_csv(back).splitlines()[0]


def test_show_tx_and_address_explain_synthetic_and_negative(lazarus):
    r, ws = lazarus["report"], lazarus["ws"]
    txid = r.holdings[0].ref.split(":")[0]
    run = CliRunner()
    out = run.invoke(main, ["show", "tx", txid, "--data", str(ws.path)], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "[synthesised]" in out.output and "not an on-chain id" in out.output
    js = json.loads(run.invoke(main, ["show", "tx", txid, "--format", "json", "--data", str(ws.path)]).output)
    assert js["synthetic_id"] is True
    out = run.invoke(main, ["show", "address", RONIN, "--data", str(ws.path)], catch_exceptions=False,
                     env={"COLUMNS": "300"})
    assert out.exit_code == 0, out.output
    assert "-173,598" in out.output and "data is partial" in out.output
    js = json.loads(run.invoke(main, ["show", "address", RONIN, "--format", "json", "--data", str(ws.path)]).output)
    eth, = [b for b in js["balances"] if b["asset"] == "ETH"]
    assert int(eth["balance"]) < 0 and "partial" in eth["note"]


@pytest.fixture(scope="module")
def simtrace(tmp_path_factory):
    root = tmp_path_factory.mktemp("simev")
    p = peel_chain_trace(root)
    return {"ws": p["ws"], "report": p["report"], "out": p["out"], "root": root}


def test_simulator_trace_has_complete_coverage(simtrace):
    ws, r = simtrace["ws"], simtrace["report"]
    check_invariant(r)
    con = ws.connect()
    lo, hi, tlo, thi = con.execute("SELECT min(height), max(height), min(time), max(time) FROM btc.blocks").fetchone()
    c = r.coverage
    assert (c["heights"]["first"], c["heights"]["last"], c["times"]["first"], c["times"]["last"]) == (lo, hi, tlo, thi)
    assert c["heights"]["synthetic"] is False and c["synthetic_txids"] == 0 and c["synthetic_txid_note"] is None
    assert c["partial_seed"] is False
    assert f"unspent as of height {hi}" in c["held_means"]
    text = to_text(r, width=300)
    assert "PARTIAL SEED" not in text and "[synthesised]" not in text
    assert f"still held (unspent as of height {hi} /" in text
    assert load_truth(simtrace["out"])["incidents"]


# ---------------------------------------------------------------------- report documents (en/ar, html/pdf)

BIDI = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u200e\u200f\u2066\u2067\u2068\u2069"))


def _report_cli(tmp_path, rep, lang, fmt):
    src = tmp_path / "trace.json"
    rep.write_json(src)
    out = tmp_path / f"report-{lang}.{fmt}"
    res = CliRunner().invoke(main, ["report", "--trace", str(src), "--lang", lang, "--format", fmt, "--out", str(out),
                                    "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["out"] == str(out)
    return out


def _pdf_text(pdf) -> str:
    txt = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, text=True, check=True)
    return unicodedata.normalize("NFKC", txt.stdout).translate(BIDI)


def _page_png_ink(pdf, tmp_path) -> tuple[float, float]:
    """Render page 1 with pdftoppm (PNG and a grey map); (share of dark pixels, horizontal centre of the dark
    pixels of the top tenth of the page as a fraction of the width)."""
    subprocess.run(["pdftoppm", "-f", "1", "-l", "1", "-r", "40", "-png", str(pdf), str(tmp_path / "p")], check=True)
    assert any(p.stat().st_size > 1000 for p in tmp_path.glob("p*.png"))
    subprocess.run(["pdftoppm", "-f", "1", "-l", "1", "-r", "40", "-gray", str(pdf), str(tmp_path / "g")], check=True)
    raw = next(tmp_path.glob("g*.pgm")).read_bytes()
    parts = raw.split(maxsplit=4)
    w, h = int(parts[1]), int(parts[2])
    px = parts[4][-w * h:]
    dark = [i for i, v in enumerate(px) if v < 128]
    top = [i % w for i in dark if i // w < h // 3]
    return len(dark) / (w * h), (sum(top) / len(top) / w if top else 0.5)


def test_document_html_english_and_arabic(lazarus, tmp_path):
    r = lazarus["report"]
    en = _report_cli(tmp_path, r, "en", "html").read_text()
    ar = _report_cli(tmp_path, r, "ar", "html").read_text()
    assert 'dir="ltr"' in en[:200] and 'lang="ar" dir="rtl"' in ar[:200]
    for h in ("Summary", "Method and policies", "Coverage and caveats", "Cash-out", "Appendix: identifiers"):
        assert h in en
    for h in ("الملخّص", "المنهجية والسياسات", "التغطية والتحفّظات", "التسييل", "ملحق: المعرّفات"):
        assert h in ar
    seeded = f"{r.total_seeded['ETH'] // 10**18:,}."
    for doc in (en, ar):
        assert seeded in doc and "173,598.052947732402351950 ETH" in doc  # exact, left to right in both
        assert f'<bdi dir="ltr" class="id">{RONIN}</bdi>' in doc
    # the data covers 23 March .. 27 September 2022: Arabic month names and Arabic-Indic digits
    assert "23 March 2022" in en and "٢٣ مارس ٢٠٢٢" in ar and "٢٧ سبتمبر ٢٠٢٢" in ar
    assert "Partial data" in en and "بيانات جزئية" in ar
    assert en.count("[synthesised]") >= len({h.ref.split(":")[0] for h in r.holdings}) and "[مُصطنَع]" in ar


def test_document_pdf_text_and_pages(lazarus, simtrace, tmp_path):
    import shutil

    if not (shutil.which("chromium") or os.environ.get("CHAINTRACE_CHROMIUM")) or not shutil.which("pdftotext"):
        pytest.skip("needs Debian chromium and poppler-utils (installed by .ci/run)")
    r = lazarus["report"]
    seeded = f"{r.total_seeded['ETH'] // 10**18:,}."
    ink = {}
    for lang in ("en", "ar"):
        d = tmp_path / lang
        d.mkdir()
        pdf = _report_cli(d, r, lang, "pdf")
        assert pdf.read_bytes()[:5] == b"%PDF-"
        text = _pdf_text(pdf)
        assert seeded in text and "173,598.052947732402351950 ETH" in text
        assert "haircut" in text and RONIN in text
        if lang == "en":
            assert "Coverage and caveats" in text and "Method and policies" in text and "Partial data" in text
            assert "not moved as of 27 September 2022" in text
        else:
            assert "المنهجية والسياسات" in text and "بيانات جزئية" in text and "مارس" in text and "٢٠٢٢" in text
            assert "التغطية" in text
        ink[lang] = _page_png_ink(pdf, d)
        assert ink[lang][0] > 0.001  # not blank (a cover page: title and a few lines)
    assert ink["en"][1] < 0.5 < ink["ar"][1]  # the cover reads from the left in English, from the right in Arabic
    # a complete trace with cash-outs: the table and its evidence paths
    s = simtrace["report"]
    assert s.sinks and s.paths
    text = _pdf_text(_report_cli(tmp_path, s, "en", "pdf"))
    assert "Evidence path 1" in text and s.paths[0].steps[0].txid[:40] in text.replace("\n", "")
    assert "Partial data" not in text


def test_case_report_with_attached_trace(lazarus, tmp_path):
    import hashlib

    from chaintrace.report import cases

    ws = Workspace(tmp_path / "casews")
    c = cases.new(ws, "Ronin bridge outflows", addresses=[RONIN], analyst="amina")
    cases.note(ws, c["id"], "exchange asked to freeze deposits", analyst="amina")
    src = tmp_path / "ronin.json"
    lazarus["report"].write_json(src)
    run = CliRunner()
    res = run.invoke(main, ["report", c["id"], "--lang", "en", "--out", str(tmp_path / "x.html"), "--data", str(ws.path)])
    assert res.exit_code == 2 and "has no trace" in res.output
    res = run.invoke(main, ["case", "add-trace", c["id"], "--trace", str(src), "--format", "json", "--data", str(ws.path)])
    assert res.exit_code == 0, res.output
    entry = json.loads(res.output)
    assert entry["action"] == "trace" and entry["detail"]["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert (cases.cases_path(ws).parent / entry["detail"]["file"]).read_bytes() == src.read_bytes()
    for lang, words in (("en", ["Case record", "exchange asked to freeze deposits", "Ronin bridge outflows"]),
                        ("ar", ["سجلّ القضية", "exchange asked to freeze deposits", "القضية"])):
        out = tmp_path / f"case-{lang}.html"
        res = run.invoke(main, ["report", c["id"], "--lang", lang, "--out", str(out), "--json", "--data", str(ws.path)])
        assert res.exit_code == 0, res.output
        doc = out.read_text()
        assert all(w in doc for w in words) and c["id"] in doc and "amina" in doc
        assert entry["detail"]["sha256"] in doc
        assert ("Partial data" if lang == "en" else "بيانات جزئية") in doc
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    res = run.invoke(main, ["case", "add-trace", c["id"], "--trace", str(bad), "--data", str(ws.path)])
    assert res.exit_code == 2 and "not a chaintrace trace report" in res.output
