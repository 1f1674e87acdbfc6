"""Cases (issue 16, part 2): `chaintrace case new|list|show|add|note|status|verify|export`, the hash-chained
audit trail (edits and deletions detected), exhibits' hashes, all-or-nothing writes (an interrupted write
leaves nothing half-written), concurrent writers, the self-contained archive; and the report document of a
case (English and Arabic, HTML and PDF): policy spread, flow diagram, timeline, sanctions with the precision
of their dates, screening results, notes — read back with pdftotext and rendered to PNG with pdftoppm.

Data: the Bitcoin simulator (peel chain with tagged services: the policies disagree) and the real Dune export
of transfers into the Lazarus/Ronin addresses with the OFAC lists of 0xB10C (2024-09-27)."""
from __future__ import annotations

import getpass
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import zipfile

import pytest
from click.testing import CliRunner

from chaintrace import intel
from chaintrace.chains.eth import ingest_transfer_list
from chaintrace.cli import main
from chaintrace.report import case_export, cases
from chaintrace.report.context import case_context, date_precision
from chaintrace.report.document import render_document
from chaintrace.report.text import amount
from chaintrace.store.workspace import Workspace
from chaintrace.trace import trace
from tests.conftest import REPO, dataset, peel_chain_trace

RONIN = "0x098b716b8aaf21512996dc57eb0615e2383e2f96"
NEWS = "un-panel-316m.ar.txt"


def run(ws, *args, env=None):
    return CliRunner().invoke(main, ["--data", str(ws.path), *args], env=env, catch_exceptions=False)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    root = tmp_path_factory.mktemp("cases-sim")
    p = peel_chain_trace(root)
    p["report"].write_json(root / "trace.json")
    return {"ws": p["ws"], "report": p["report"], "trace": root / "trace.json", "root": root, "seed": p["seed"]}


def _fresh(sim, tmp_path, name="ws") -> Workspace:
    """A workspace sharing the simulator's chain data, with its own (empty) case store."""
    ws = Workspace(tmp_path / name)
    shutil.copytree(sim["ws"].path, ws.path, ignore=shutil.ignore_patterns("cases"))
    return ws


def test_case_commands(sim, tmp_path, monkeypatch):
    ws = _fresh(sim, tmp_path)
    monkeypatch.delenv("CHAINTRACE_ANALYST", raising=False)
    r = run(ws, "case", "new", "--title", "Peel chain", "--address", "bcrt1qexample", "--tx", "ab" * 32,
            "--chain", "btc", "--analyst", "amina", "--format", "json")
    assert r.exit_code == 0, r.output
    c = json.loads(r.output)
    cid = c["id"]
    assert cid.startswith("case-") and c["addresses"] == [{"chain": "btc", "address": "bcrt1qexample"}]
    assert c["txids"] == ["ab" * 32] and c["audit"][0]["analyst"] == "amina"
    assert c["audit"][0]["detail"]["analyst_from"] == "option" and c["audit"][0]["prev"] == cases.GENESIS
    r = run(ws, "case", "new", "--title", "x", "--id", cid)
    assert r.exit_code == 2 and "exists already" in r.output
    assert run(ws, "case", "new", "--title", "x", "--id", "../up").exit_code == 2

    # analyst from the environment, then from the OS user
    r = run(ws, "case", "note", cid, "exchange asked to freeze the deposits", "--format", "json",
            env={"CHAINTRACE_ANALYST": "bob"})
    note = json.loads(r.output)
    assert (note["analyst"], note["detail"]["analyst_from"], note["seq"]) == ("bob", "env", 2)
    screen = tmp_path / "screen.json"
    sink = sim["report"].sinks[0].address
    sr = run(ws, "screen", "address", sink, "--format", "json")
    assert sr.exit_code == 0, sr.output
    screen.write_text(sr.output)
    exhibit = dataset("..", "fixtures", "news", NEWS)
    r = run(ws, "case", "add", cid, "--seed", "bcrt1qother", "--seed", "bcrt1qexample", "--trace", str(sim["trace"]),
            "--screen", str(screen), "--exhibit", str(exhibit), "--description", "UN panel report (Arabic)",
            "--format", "json")
    assert r.exit_code == 0, r.output
    added = json.loads(r.output)["added"]
    assert [a["action"] for a in added] == ["seed", "trace", "screen", "exhibit"]
    assert all(a["analyst"] == getpass.getuser() and a["detail"]["analyst_from"] == "os-user" for a in added)
    assert added[0]["detail"]["addresses"] == ["bcrt1qother"]  # the known seed is not added twice
    tr = added[1]["detail"]
    rep = sim["report"]
    assert tr["sha256"] == hashlib.sha256(sim["trace"].read_bytes()).hexdigest()
    assert tr["policy"]["name"] == "fifo" and tr["limits"]["min_value"] == "0" and tr["chain"] == "btc"
    assert tr["data"]["heights"] == rep.coverage["heights"] and tr["data"]["store_commit"] == rep.stats["store_commit"]
    assert tr["totals"]["sinks"] == str(rep.totals()["BTC"]["sinks"])
    ex = added[3]["detail"]
    root = cases.cases_path(ws).parent
    assert (root / ex["file"]).read_bytes() == exhibit.read_bytes()
    assert ex["sha256"] == hashlib.sha256(exhibit.read_bytes()).hexdigest() and ex["name"] == NEWS
    assert added[2]["detail"]["subjects"] == [json.loads(sr.output)["results"][0]["subject"]]
    r = run(ws, "case", "add", cid, "--screen-address", sink, "--format", "json")
    assert json.loads(r.output)["added"][0]["detail"]["ran"] is True

    # each chained to the one before
    c = cases.get(ws, cid)
    assert [a["seq"] for a in c["audit"]] == list(range(1, 8))
    assert all(b["prev"] == a["hash"] for a, b in zip(c["audit"], c["audit"][1:])) and c["head"] == c["audit"][-1]["hash"]
    assert {"amina", "bob", getpass.getuser()} == set(c["analysts"])
    assert len(c["traces"]) == 1 and len(c["screens"]) == 2 and len(c["exhibits"]) == 1 and len(c["notes"]) == 1

    r = run(ws, "case", "status", cid, "closed")
    assert r.exit_code == 0 and "open -> closed" in r.output
    r = run(ws, "case", "list", "--format", "json")
    row, = json.loads(r.output)["cases"]
    assert (row["id"], row["status"], row["entries"]) == (cid, "closed", 8)
    r = run(ws, "case", "show", cid)
    assert r.exit_code == 0
    for text in ("exchange asked to freeze the deposits", NEWS, tr["sha256"], "bcrt1qother", "fifo"):
        assert text in r.output
    r = run(ws, "case", "verify", cid)
    assert r.exit_code == 0 and f"OK case {cid}: 8 audit entries" in r.output and "4 files" in r.output

    # user errors: exit 2 with a message
    bad = tmp_path / "bad.json"
    bad.write_text('{"x": 1}')
    for args, msg in ((["add", cid], "nothing to add"), (["add", cid, "--trace", str(bad)], "not a chaintrace trace"),
                      (["add", cid, "--screen", str(bad)], "not a chaintrace screening result"),
                      (["add", cid, "--exhibit", str(tmp_path / "nope.pdf")], "no such file"),
                      (["show", "case-nope"], "no case 'case-nope'"), (["note", cid, " "], "the note is empty")):
        r = run(ws, "case", *args)
        assert r.exit_code == 2 and msg in r.output, (args, r.output)
    assert len(cases.get(ws, cid)["audit"]) == 8


def test_trace_run_from_the_case_and_spread_without_the_data(sim, tmp_path):
    from chaintrace.report.context import policy_spread

    ws = _fresh(sim, tmp_path)
    cid = cases.new(ws, "run a trace", analyst="amina")["id"]
    r = run(ws, "case", "add", cid, "--run-trace", "poison", "--chain", "btc")
    assert r.exit_code == 2 and "has no seed to trace" in r.output
    cases.add_seeds(ws, cid, [sim["seed"]], analyst="amina")
    assert cases.get(ws, cid)["txids"] == [sim["seed"]]  # txid:vout is a transaction seed
    r = run(ws, "case", "add", cid, "--run-trace", "poison", "--chain", "btc", "--min-value", "0", "--format", "json")
    assert r.exit_code == 0, r.output
    entry, = json.loads(r.output)["added"]
    assert entry["action"] == "trace" and entry["detail"]["policy"]["name"] == "poison"
    assert entry["detail"]["seeds"] == [sim["seed"]]
    assert entry["detail"]["totals"]["seeded"] == str(sim["report"].totals()["BTC"]["seeded"])
    assert cases.verify(ws, cid)["ok"]
    # the policy spread needs the trace's data: elsewhere it says why it is missing
    sp = policy_spread(Workspace(tmp_path / "empty"), sim["report"])
    assert "no btc data" in sp["error"] and not sp["data_match"]
    assert not (tmp_path / "empty").exists()


def test_store_of_an_older_chaintrace_is_upgraded(tmp_path):
    """A case store made before the hash chain: it opens, new entries are chained, verify names the old ones."""
    ws = Workspace(tmp_path / "ws")
    p = cases.cases_path(ws)
    p.parent.mkdir(parents=True)
    con = sqlite3.connect(p)
    con.execute("CREATE TABLE cases (id TEXT PRIMARY KEY, title TEXT NOT NULL, status TEXT NOT NULL, "
                "created_at TEXT NOT NULL, origin TEXT, addresses TEXT, txids TEXT, detail TEXT)")
    con.execute("CREATE TABLE audit (case_id TEXT NOT NULL, seq INTEGER NOT NULL, at TEXT NOT NULL, analyst TEXT, "
                "action TEXT NOT NULL, detail TEXT, PRIMARY KEY (case_id, seq))")
    con.execute("INSERT INTO cases VALUES ('case-old', 'old', 'open', '2026-01-01T00:00:00+00:00', '{}', '[]', '[]', '{}')")
    con.execute("INSERT INTO audit VALUES ('case-old', 1, '2026-01-01T00:00:00+00:00', 'ann', 'opened', '{}')")
    con.commit()
    con.close()
    c = cases.note(ws, "case-old", "after the upgrade", analyst="bob")
    assert [a["action"] for a in c["audit"]] == ["opened", "note"] and c["audit"][1]["prev"] == cases.GENESIS
    v = cases.verify(ws, "case-old")
    assert v["problems"] == ["entry #1 has no hash (written before the hash chain; unverifiable)"]


def _case_with_files(tmp_path, n_notes=3):
    ws = Workspace(tmp_path / "ws")
    c = cases.new(ws, "tamper test", analyst="amina")
    for i in range(n_notes):
        cases.note(ws, c["id"], f"note {i}", analyst="amina")
    ex = tmp_path / "exhibit.txt"
    ex.write_text("original exhibit\n")
    cases.add_exhibit(ws, c["id"], ex, "x", analyst="amina")
    return ws, c["id"]


def _tamper(ws, *sql):
    con = sqlite3.connect(cases.cases_path(ws))
    con.execute("DROP TRIGGER audit_no_update")
    con.execute("DROP TRIGGER audit_no_delete")
    for s in sql:
        con.execute(s)
    con.commit()
    con.close()


def test_audit_chain_detects_edits_and_deletions(tmp_path):
    ws, cid = _case_with_files(tmp_path)
    assert cases.verify(ws, cid)["ok"]
    r = run(ws, "case", "verify", "--format", "json")
    assert r.exit_code == 0 and json.loads(r.output)["ok"] is True
    con = sqlite3.connect(cases.cases_path(ws))
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("UPDATE audit SET detail = '{}' WHERE seq = 2")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("DELETE FROM audit WHERE seq = 2")
    con.close()
    base = tmp_path / "base"
    shutil.copytree(ws.path, base)

    def fresh():
        shutil.rmtree(ws.path)
        shutil.copytree(base, ws.path)
        return ws

    cases_ = {
        "edit": (["UPDATE audit SET detail = replace(detail, 'note 1', 'note one') WHERE seq = 3"],
                 "entry #3 (note, "),
        "analyst": (["UPDATE audit SET analyst = 'mallory' WHERE seq = 2"], "entry #2 (note"),
        "delete middle": (["DELETE FROM audit WHERE seq = 2"], "entry 2 is missing"),
        "delete last": (["DELETE FROM audit WHERE seq = 5"], "later entries were deleted"),
        "rewrite hash": (["UPDATE audit SET detail = '{}', hash = 'x' WHERE seq = 3"], "entry #4 does not follow #3"),
    }
    for name, (sql, msg) in cases_.items():
        _tamper(fresh(), *sql)
        v = cases.verify(ws, cid)
        assert not v["ok"] and any(msg in p for p in v["problems"]), (name, v["problems"])
        r = run(ws, "case", "verify", cid)
        assert r.exit_code == 1 and "FAILED" in r.output and msg in r.output
        r = run(ws, "case", "verify")  # every case of the workspace
        assert r.exit_code == 1 and f"FAILED {cid}" in r.output and "0 of 1 cases verify" in r.output
    # an exhibit changed or removed after it was kept
    fresh()
    f = cases.cases_path(ws).parent / cases.get(ws, cid)["exhibits"][0]["file"]
    f.write_text("forged exhibit\n")
    assert any("does not match its SHA-256" in p for p in cases.verify(ws, cid)["problems"])
    f.unlink()
    assert any("is missing" in p for p in cases.verify(ws, cid)["problems"])


def test_concurrent_writers_keep_one_chain(tmp_path):
    ws = Workspace(tmp_path / "ws")
    cid = cases.new(ws, "busy case", analyst="a0")["id"]
    errors = []

    def writer(k):
        try:
            for i in range(6):
                cases.note(ws, cid, f"writer {k} note {i}", analyst=f"a{k}")
            (tmp_path / f"e{k}.txt").write_text(f"exhibit {k}\n" * 1000)
            cases.add_exhibit(ws, cid, tmp_path / f"e{k}.txt", analyst=f"a{k}")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    c = cases.get(ws, cid)
    assert [a["seq"] for a in c["audit"]] == list(range(1, 30))
    assert sorted(n["text"] for n in c["notes"]) == sorted(f"writer {k} note {i}" for k in range(4) for i in range(6))
    v = cases.verify(ws, cid)
    assert v["ok"] and v["files"] == 4, v


def test_interrupted_writes_leave_nothing_half_written(tmp_path, monkeypatch):
    ws, cid = _case_with_files(tmp_path, n_notes=1)
    before = cases.get(ws, cid)["audit"]
    exdir = cases.case_dir(ws, cid) / "exhibits"
    files_before = sorted(exdir.iterdir())
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 << 20))

    # interrupted while copying (Ctrl-C between two blocks): no file, no temporary file, no entry
    real_open = open
    calls = {"n": 0}

    class Flaky:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.fh.close()

        def read(self, n):
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt
            return self.fh.read(n)

    def flaky_open(p, mode="r", *a, **k):
        fh = real_open(p, mode, *a, **k)
        return Flaky(fh) if str(p) == str(big) else fh

    monkeypatch.setattr("builtins.open", flaky_open)
    with pytest.raises(KeyboardInterrupt):
        cases.add_exhibit(ws, cid, big, analyst="amina")
    monkeypatch.undo()
    assert sorted(exdir.iterdir()) == files_before
    # interrupted in the database transaction, after the file was stored: the entry and the file are gone
    monkeypatch.setattr(cases, "entry_hash", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        cases.add_exhibit(ws, cid, big, analyst="amina")
    monkeypatch.undo()
    assert sorted(exdir.iterdir()) == files_before
    assert cases.get(ws, cid)["audit"] == before and cases.verify(ws, cid)["ok"]

    # a process killed (SIGKILL) while it copies an exhibit from a pipe: nothing under a final name
    fifo = tmp_path / "slow-exhibit"
    os.mkfifo(fifo)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    p = subprocess.Popen([sys.executable, "-m", "chaintrace", "--data", str(ws.path), "case", "add", cid,
                          "--exhibit", str(fifo)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while True:  # open the pipe once the process reads it (never block on a process that died first)
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:
            assert p.poll() is None and time.monotonic() < deadline, p.stderr.read() if p.poll() is not None else "timeout"
            time.sleep(0.05)
    os.set_blocking(fd, True)
    try:
        with open(fd, "wb") as w:
            w.write(os.urandom(2 << 20))
            w.flush()
            while not any(f.name.startswith(".tmp-") and f.stat().st_size > 0 for f in exdir.iterdir()):
                assert time.monotonic() < deadline and p.poll() is None, p.stderr.read() if p.poll() else "timeout"
                time.sleep(0.05)
            p.send_signal(signal.SIGKILL)
            p.wait()
    except BrokenPipeError:
        pass
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == -signal.SIGKILL
    left = sorted(set(exdir.iterdir()) - set(files_before))
    assert all(f.name.startswith(".tmp-") for f in left) and len(left) == 1
    assert cases.get(ws, cid)["audit"] == before
    v = cases.verify(ws, cid)
    assert v["ok"] and v["interrupted_writes"] == [left[0].relative_to(cases.cases_path(ws).parent).as_posix()]
    assert "interrupted writes" in run(ws, "case", "verify", cid).output


def test_export_archive_and_its_check(sim, tmp_path):
    ws = _fresh(sim, tmp_path)
    cid = cases.new(ws, "Peel chain export", addresses=["bcrt1qexample"], analyst="amina", case_id="agency-2026-17")["id"]
    assert cid == "agency-2026-17"
    r = run(ws, "case", "export", cid, "--out", str(tmp_path / "empty.zip"), "--format", "json")
    assert r.exit_code == 0 and "the case has no trace" in json.loads(r.output)["report"]
    cases.attach_trace(ws, cid, sim["trace"], analyst="amina")
    exhibit = dataset("..", "fixtures", "news", NEWS)
    cases.add_exhibit(ws, cid, exhibit, "UN panel report", analyst="amina")
    cases.note(ws, cid, "exchange asked to freeze the deposits", analyst="bob")
    out = tmp_path / "case.zip"
    r = run(ws, "case", "export", cid, "--out", str(out), "--lang", "en", "--lang", "ar", "--no-spread",
            "--analyst", "carol", "--format", "json")
    assert r.exit_code == 0, r.output
    m = json.loads(r.output)
    assert m["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest() and m["exported_by"] == "carol"
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
        assert {"case.json", "manifest.json", "report-en.html", "report-ar.html"} <= names
        manifest = json.loads(z.read("manifest.json"))
        for name, meta in manifest["files"].items():
            assert hashlib.sha256(z.read(name)).hexdigest() == meta["sha256"]
        ex = [n for n in names if n.startswith("exhibits/")]
        assert len(ex) == 1 and z.read(ex[0]) == exhibit.read_bytes()
        tr = [n for n in names if n.startswith("traces/")]
        assert len(tr) == 1 and z.read(tr[0]) == sim["trace"].read_bytes()
        archived = json.loads(z.read("case.json"))
        assert "agency-2026-17" in z.read("report-en.html").decode() and 'dir="rtl"' in z.read("report-ar.html").decode()
    c = cases.get(ws, cid)
    assert archived["audit"] == c["audit"][:-1] and manifest["audit_head"] == archived["head"]
    last = c["audit"][-1]
    assert last["action"] == "export" and last["analyst"] == "carol" and last["detail"]["sha256"] == m["sha256"]
    r = run(ws, "case", "verify", "--archive", str(out))
    assert r.exit_code == 0 and "OK archive" in r.output

    def rewrite(dst, change):
        with zipfile.ZipFile(out) as z, zipfile.ZipFile(dst, "w") as w:
            for n in z.namelist():
                w.writestr(n, change(n, z.read(n)))
        return case_export.verify_archive(dst)

    v = rewrite(tmp_path / "t1.zip", lambda n, d: b"forged" if n.startswith("exhibits/") else d)
    assert not v["ok"] and any("does not match its SHA-256" in p for p in v["problems"])

    def edit_note(n, d):  # edit a note in case.json and fix the manifest's hash: the chain still breaks
        if n == "case.json":
            return d.replace(b"freeze the deposits", b"release the deposits")
        if n == "manifest.json":
            mm = json.loads(d)
            new = json.dumps(archived, ensure_ascii=False, indent=1).replace("freeze the deposits",
                                                                              "release the deposits").encode()
            mm["files"]["case.json"] = {"sha256": hashlib.sha256(new).hexdigest(), "bytes": len(new)}
            return json.dumps(mm).encode()
        return d
    v = rewrite(tmp_path / "t2.zip", edit_note)
    assert not v["ok"] and v["problems"] == [p for p in v["problems"] if "was changed after it was written" in p]
    r = run(ws, "case", "verify", "--archive", str(tmp_path / "t2.zip"))
    assert r.exit_code == 1 and "FAILED" in r.output
    # a case that does not verify is not exported; an interrupted export leaves no file
    _tamper(ws, f"UPDATE audit SET analyst = 'x' WHERE case_id = '{cid}' AND seq = 2")
    r = run(ws, "case", "export", cid, "--out", str(tmp_path / "no.zip"))
    assert r.exit_code == 2 and "does not verify" in r.output and not (tmp_path / "no.zip").exists()
    assert not list(tmp_path.glob(".*.tmp-*"))


# ------------------------------------------------------------------------------ report documents of a case

BIDI = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u200e\u200f\u2066\u2067\u2068\u2069"))


def _pdf_text(pdf) -> str:
    import unicodedata

    txt = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, text=True, check=True)
    return unicodedata.normalize("NFKC", txt.stdout).translate(BIDI)


def _pages_ink(pdf, d) -> list[tuple[float, float]]:
    """Every page rendered with pdftoppm (PNG, and grey maps to measure): per page (share of inked pixels,
    horizontal centre of the inked pixels of the page's top third as a fraction of the width)."""
    subprocess.run(["pdftoppm", "-r", "30", "-png", str(pdf), str(d / "p")], check=True)
    pngs = sorted(d.glob("p-*.png"))
    subprocess.run(["pdftoppm", "-r", "30", "-gray", str(pdf), str(d / "g")], check=True)
    out = []
    for g in sorted(d.glob("g-*.pgm")):
        raw = g.read_bytes()
        parts = raw.split(maxsplit=4)
        w, h = int(parts[1]), int(parts[2])
        px = parts[4][-w * h:]
        dark = [i for i, v in enumerate(px) if v < 200]
        top = [i % w for i in dark if i // w < h // 3]
        out.append((len(dark) / (w * h), sum(top) / len(top) / w if top else 0.5))
    assert len(pngs) == len(out) and all(p.stat().st_size > 500 for p in pngs)
    return out


def test_case_report_pdf_en_ar(sim, tmp_path):
    if not (shutil.which("chromium") or os.environ.get("CHAINTRACE_CHROMIUM")) or not shutil.which("pdftotext"):
        pytest.skip("needs Debian chromium and poppler-utils (installed by .ci/run)")
    ws = _fresh(sim, tmp_path)
    cid = cases.new(ws, "Peel chain theft", addresses=[], analyst="amina", case_id="peel-7")["id"]
    # stopped at the peel chain's deposit addresses, every policy reports the same cash-outs; walked through
    # them into the exchanges' sweeps (--follow-services) the policies disagree: a real spread to render
    r = trace(ws, [sim["seed"]], policy="fifo", min_value=0, tags=[sim["root"] / "sim" / "tags.yaml"],
              follow_services=True)
    r.write_json(tmp_path / "trace-follow.json")
    cases.attach_trace(ws, cid, tmp_path / "trace-follow.json", analyst="amina")
    cases.run_screen(ws, cid, [r.sinks[0].address], analyst="amina")
    cases.add_exhibit(ws, cid, dataset("..", "fixtures", "news", NEWS), "UN panel report", analyst="amina")
    cases.note(ws, cid, "exchange asked to freeze the deposits", analyst="bob")
    texts, ink = {}, {}
    for lang in ("en", "ar"):
        d = tmp_path / lang
        d.mkdir()
        res = run(ws, "report", cid, "--lang", lang, "--format", "pdf", "--out", str(d / "case.pdf"), "--json")
        assert res.exit_code == 0, res.output
        info = json.loads(res.output)
        texts[lang] = _pdf_text(d / "case.pdf")
        ink[lang] = _pages_ink(d / "case.pdf", d)
        assert all(share > 0.0002 for share, _ in ink[lang]), ink[lang]  # no blank page
    spread = {x["policy"]: x["sinks"] for x in info["spread"]}
    assert set(spread) == {"fifo", "poison", "haircut", "lifo", "tiho"} and not any(x["error"] for x in info["spread"])
    assert len({int(v) for v in spread.values()}) > 1  # the policies disagree on this trace: a real spread
    lo, hi = amount(r, min(int(v) for v in spread.values())), amount(r, max(int(v) for v in spread.values()))
    en, ar = texts["en"], texts["ar"]
    seeded = amount(r, r.totals()["BTC"]["seeded"])
    for word in ("Coverage and caveats", "Method and policies", "Uncertainty: the spread between taint policies",
                 "Flow of the traced value", "Reached services", "Timeline", "Sanctions and attribution",
                 "Screening results of the case", "exchange asked to freeze the deposits", NEWS, "peel-7", "amina",
                 "Cash-out", "Evidence path 1", "Appendix: identifiers", "this report",
                 "Receiving services: the trace's attribution and its sources", r.sinks[0].source):
        assert word in en, word
    for text in (en, ar):
        assert seeded in text and lo in text and hi in text
        assert all(p in text for p in ("fifo", "poison", "haircut", "lifo", "tiho"))
    for word in ("عدم اليقين", "المنهجية والسياسات", "التغطية", "مسار القيمة",
                 "التسلسل الزمني", "العقوبات والإسناد", "نتائج الفحص", "الملاحظات", "يناير", "٢٠٢٤"):
        assert word in ar, word
    # the archive carries the PDF too
    m = case_export.export_case(ws, cid, tmp_path / "peel.zip", langs=("ar",), pdf=True, spread=False)
    assert {"report-ar.html", "report-ar.pdf"} <= set(m["files"])
    with zipfile.ZipFile(tmp_path / "peel.zip") as z:
        assert z.read("report-ar.pdf")[:5] == b"%PDF-"
    assert case_export.verify_archive(tmp_path / "peel.zip")["ok"]
    assert ink["en"][0][1] < 0.5 < ink["ar"][0][1]  # cover: read from the left in English, from the right in Arabic
    # the headings of the following pages sit right in Arabic, left in English, page after page
    assert sum(x for _, x in ink["ar"][1:]) / (len(ink["ar"]) - 1) > sum(x for _, x in ink["en"][1:]) / (len(ink["en"]) - 1)


def test_policy_rerun_keeps_the_services_mode(sim):
    """The spread re-runs a trace under the other policies with its own options: --follow-services too."""
    from chaintrace.report.context import rerun

    ws = sim["ws"]
    r = trace(ws, [sim["seed"]], policy="fifo", min_value=0, tags=[sim["root"] / "sim" / "tags.yaml"],
              follow_services=True)
    assert r.limits["services"] == "follow" and rerun(ws, r, "haircut").limits["services"] == "follow"
    assert rerun(ws, sim["report"], "haircut").limits["services"] == "stop"


@pytest.fixture(scope="module")
def ronin(tmp_path_factory):
    root = tmp_path_factory.mktemp("cases-ronin")
    ws = Workspace(root / "data")
    ingest_transfer_list(ws, dataset("lazarus-eth-dune-dspytdao", "LazarusTabularTxs1322519.csv"))
    r = trace(ws, [RONIN], chain="eth", policy="haircut", min_value=0)
    return {"ws": ws, "report": r}


def test_sanctions_with_the_precision_of_their_dates(ronin):
    ws, r = ronin["ws"], ronin["report"]
    intel.import_paths(ws, "ofac-sdn", [dataset("ofac-sdn", "0xB10C-lists-2024-09")], as_of="2024-09-27")
    c = cases.new(ws, "Ronin bridge outflows", addresses=[RONIN], analyst="amina", case_id="ronin-2022")
    ctx = case_context(ws, r, c)
    row, = [x for x in ctx["attribution"]["rows"] if x["address"] == RONIN]
    assert row["role"] == "seed" and row["sanctioned"] is True
    s = row["sanctions"][0]
    assert s["precision"] == ["listed no later than 2024-09-27 (first imported list snapshot holding the address)",
                              "no earlier snapshot imported"]
    assert any(i["source"] for i in row["incidents"])  # the Ronin exploit with its source
    assert date_precision({"valid_from": "2022-04-14", "absent_before": "2022-04-01", "listed_date": "2019-09-13",
                           "valid_to": None}) == [
        "listed no later than 2022-04-14 (first imported list snapshot holding the address)",
        "not on the snapshot of 2022-04-01", "entry dates from 2019-09-13 (the list gives no date per address)"]
    # the spread over partial data: every policy holds everything (the data ends where the theft's money sits)
    assert {p["name"] for p in ctx["spread"]["policies"]} == {"haircut", "poison", "fifo", "lifo", "seniority"}
    assert ctx["spread"]["data_match"] and ctx["spread"]["min"]["holdings"] == ctx["spread"]["max"]["holdings"]
    en, ar = render_document(r, "en", case=c, context=ctx), render_document(r, "ar", case=c, context=ctx)
    for doc in (en, ar):
        assert "listed no later than 2024-09-27" in doc and RONIN in doc and "ronin-2022" in doc
        assert '<svg xmlns="http://www.w3.org/2000/svg" class="sankey"' in doc and "<script" not in doc
        assert "http://" not in doc.replace("http://www.w3.org/2000/svg", "")  # self-contained: no CDN
    assert "Partial data" in en and "بيانات جزئية" in ar and "العقوبات والإسناد" in ar
    assert "Sanctions and attribution" in en and "Date precision" in en and "دقّة التاريخ" in ar
    assert "<td>seed</td>" in en and "<td>نقطة بداية</td>" in ar
