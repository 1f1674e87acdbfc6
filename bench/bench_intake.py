"""Intake benchmark: news extraction speed and accuracy on generated articles (Arabic and English), and the
tip line's throughput and latency with encryption, through a real uvicorn server on 127.0.0.1.

Extraction: articles are generated from templates (amounts in every money form of the grammar, dates in
every date form, victims and actors from the gazetteer, filler sentences), with the truth known; we report
articles/s and characters/s and the share of generated incidents found with the right amount, date and
victim. Baseline in the same run: the money grammar alone over the same text (the floor of any extractor
that finds amounts).

Tips: ``TipStore.submit`` in process (validate + screen + seal + SQLite), then ``POST /v1/tips`` end to end
(one client, then 8 concurrent clients) with p50/p99 latency; baseline in the same run: ``GET /tip`` on the
same server (HTTP floor: no validation, encryption or storage).

Full scale:    python bench/bench_intake.py --articles 2000 --tips 2000
Quick check:   python bench/bench_intake.py --articles 200 --tips 200 --no-report
"""
from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from bench._report import peak_rss_mb, write_section  # noqa: E402
from chaintrace import Workspace  # noqa: E402
from chaintrace.intake import TipStore, keygen, screen_tip  # noqa: E402
from chaintrace.intel.extract import extract_text  # noqa: E402
from chaintrace.intel.extract.money import find_money  # noqa: E402
from chaintrace.intel.extract.text import prepare  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
AR_MONTHS = ["يناير", "فبراير", "مارس", "أبريل", "مايو", "يونيو", "يوليو", "أغسطس", "سبتمبر", "أكتوبر", "نوفمبر", "ديسمبر"]
LEV_MONTHS = ["كانون الثاني", "شباط", "آذار", "نيسان", "أيار", "حزيران", "تموز", "آب", "أيلول", "تشرين الأول",
              "تشرين الثاني", "كانون الأول"]
EN_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
             "November", "December"]
VICTIMS = [("bybit", "Bybit", "بايبت"), ("kucoin", "KuCoin", "كوكوين"), ("bangladesh-bank", "Bangladesh Bank",
           "مصرف بنغلادش المركزي"), ("feib", "Far Eastern International Bank", "بنك الشرق الأقصى الدولي"),
           ("coincheck", "Coincheck", "كوين تشيك"), ("upbit", "Upbit", "ابيت"), ("wazirx", "WazirX", "وازير اكس"),
           ("atomic-wallet", "Atomic Wallet", "اتوميك واليت"), ("harmony", "Harmony Horizon", "هارموني")]
FILLER_EN = ["Officials declined to comment on the investigation.", "The company said customer funds were safe.",
             "Analysts have tracked the group's activity for years.", "Shares of the firm fell after the news."]
FILLER_AR = ["ولم يعلق المسؤولون على التحقيق.", "وقالت الشركة إن أموال العملاء آمنة.",
             "ويتابع المحللون نشاط المجموعة منذ سنوات.", "وتراجعت أسهم الشركة بعد الخبر."]


def _ar_digits(s: str) -> str:
    return s.translate(str.maketrans("0123456789.", "٠١٢٣٤٥٦٧٨٩٫"))


def en_sentence(r: random.Random) -> tuple[str, dict]:
    vid, ven, _ = r.choice(VICTIMS)
    y, m = r.randint(2016, 2024), r.randint(1, 12)
    whole = r.randint(2, 900)
    form = r.randrange(4)
    if form == 0:
        text, val = f"${whole} million", whole * 10**6
    elif form == 1:
        d = r.randint(1, 9)
        text, val = f"${whole}.{d}m", whole * 10**6 + d * 10**5
    elif form == 2:
        text, val = f"US${whole} million", whole * 10**6
    else:
        text, val = f"USD {whole} million", whole * 10**6
    day = r.randint(1, 28)
    date = r.choice([(f"in {EN_MONTHS[m - 1]} {y}", f"{y}-{m:02d}"), (f"in {y}", f"{y}"),
                     (f"on {EN_MONTHS[m - 1]} {day}, {y}", f"{y}-{m:02d}-{day:02d}"),
                     (f"in late {y}", f"{y}-10")])
    actor = r.choice(["The Lazarus Group", "North Korean hackers", "Hackers believed to work for Pyongyang"])
    s = f"{actor} stole {text} from {ven} {date[0]}."
    return s, {"amount": val, "date": date[1], "victim": vid}


def ar_sentence(r: random.Random) -> tuple[str, dict]:
    vid, _, var = r.choice(VICTIMS)
    y, m = r.randint(2016, 2024), r.randint(1, 12)
    whole = r.randint(2, 900)
    form = r.randrange(4)
    if form == 0:
        text, val = f"{whole} مليون دولار", whole * 10**6
    elif form == 1:
        d = r.randint(1, 9)
        text, val = f"{whole},{d} مليون دولار", whole * 10**6 + d * 10**5
    elif form == 2:
        d = r.randint(1, 9)
        text, val = _ar_digits(f"{whole}.{d}") + " مليون دولار", whole * 10**6 + d * 10**5
    else:
        text, val = "ملياري دولار", 2 * 10**9
    date = r.choice([(f"في {AR_MONTHS[m - 1]} {y}", f"{y}-{m:02d}"), (f"في {LEV_MONTHS[m - 1]} {y}", f"{y}-{m:02d}"),
                     (f"عام {y}", f"{y}")])
    actor = r.choice(["قراصنة كوريا الشمالية", "مجموعة لازاروس", "قراصنة يشتبه في ارتباطهم ببيونغ يانغ"])
    s = f"وسرق {actor} {text} من {var} {date[0]}."
    return s, {"amount": val, "date": date[1], "victim": vid}


def article(r: random.Random, lang: str) -> tuple[str, list[dict]]:
    gen, filler = (en_sentence, FILLER_EN) if lang == "en" else (ar_sentence, FILLER_AR)
    parts, truth = [], []
    for _ in range(r.randint(2, 5)):
        s, t = gen(r)
        parts.append(s)
        truth.append(t)
        parts.extend(r.sample(filler, 2))
    return " ".join(parts) + "\n", truth


def bench_extract(n: int, seed: int) -> list[str]:
    r = random.Random(seed)
    docs = [article(r, "en" if i % 2 else "ar") for i in range(n)]
    chars = sum(len(d) for d, _ in docs)
    t0 = time.perf_counter()
    for d, _ in docs:
        find_money(prepare(d).norm)
    base = time.perf_counter() - t0
    t0 = time.perf_counter()
    results = [extract_text(d) for d, _ in docs]
    full = time.perf_counter() - t0
    found = total = 0
    per_lang = {"ar": [0, 0], "en": [0, 0]}
    for i, ((_, truth), cands) in enumerate(zip(docs, results)):
        lang = "en" if i % 2 else "ar"
        for t in truth:
            total += 1
            per_lang[lang][1] += 1
            ok = any(c["amount_usd"] == t["amount"] and c["date"] and c["date"]["start"] == t["date"]
                     and c["victim"] and c["victim"].get("id") == t["victim"] for c in cands)
            found += ok
            per_lang[lang][0] += ok
    return [
        f"| extraction, full pipeline | {n / full:,.0f} articles/s ({chars / full / 1e6:.2f} M chars/s) |",
        f"| baseline: money grammar alone, same text | {n / base:,.0f} articles/s |",
        f"| incidents found with exact amount, date and victim | {found}/{total} ({100 * found / total:.1f}%); "
        f"Arabic {per_lang['ar'][0]}/{per_lang['ar'][1]}, English {per_lang['en'][0]}/{per_lang['en'][1]} |",
        f"| corpus | {n:,} generated articles (half Arabic, half English), {chars:,} characters |",
    ]


def _tip(r: random.Random) -> dict:
    return {"addresses": ["0x098B716B8Aaf21512996dC57EB0615e2383E2f96"], "txids": [f"{r.getrandbits(256):064x}"],
            "amounts": [{"value": str(r.randint(1, 10**6)), "asset": "ETH"}],
            "narrative": "Funds moved through this address. " * r.randint(1, 20), "anonymous": True}


def _pctl(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]


def bench_tips(n: int, seed: int, tmp: Path) -> list[str]:
    r = random.Random(seed)
    ws = Workspace(tmp / "ws")
    k = keygen(tmp / "analysts.key")
    store = TipStore(ws)
    store.set_public_key(k["public_key"])
    from chaintrace.screen import Screener

    screener = Screener(ws)
    t0 = time.perf_counter()
    for _ in range(n):
        store.submit(_tip(r), screen=lambda t: screen_tip(ws, t, screener))
    lib = time.perf_counter() - t0
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    env = dict(os.environ, CHAINTRACE_DATA=str(ws.path), CHAINTRACE_TIP_RATE="1000000/1000000000",
               PYTHONPATH=str(REPO / "src"))
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "chaintrace.api.server:app_factory",
                             "--fd", str(sock.fileno()), "--log-level", "warning", "--no-access-log"],
                            env=env, pass_fds=[sock.fileno()])
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(base + "/tip", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)

        def get() -> float:
            t = time.perf_counter()
            urllib.request.urlopen(base + "/tip", timeout=30).read()
            return time.perf_counter() - t

        def post(body: bytes) -> float:
            t = time.perf_counter()
            req = urllib.request.Request(base + "/v1/tips", data=body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=30) as resp:
                assert resp.status == 201
                resp.read()
            return time.perf_counter() - t

        bodies = [json.dumps(_tip(r)).encode() for _ in range(n)]
        for b in bodies[:20]:
            post(b)
        g = [get() for _ in range(n)]
        t0 = time.perf_counter()
        seq = [post(b) for b in bodies]
        seq_s = time.perf_counter() - t0
        lat: list[float] = []
        lock = threading.Lock()

        def worker(chunk):
            mine = [post(b) for b in chunk]
            with lock:
                lat.extend(mine)

        threads = [threading.Thread(target=worker, args=(bodies[i::8],)) for i in range(8)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        conc_s = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(10)
        sock.close()
    raw = b"".join(p.read_bytes() for p in (ws.path / "intake").glob("tips.sqlite*"))
    assert b"Funds moved through this address" not in raw
    ms = 1000
    return [
        f"| tips, library (validate + screen + seal + SQLite) | {n / lib:,.0f} tips/s |",
        f"| POST /v1/tips, 1 client | {n / seq_s:,.0f} tips/s; p50 {statistics.median(seq) * ms:.1f} ms, "
        f"p99 {_pctl(seq, 0.99) * ms:.1f} ms |",
        f"| POST /v1/tips, 8 concurrent clients | {n / conc_s:,.0f} tips/s; p50 {statistics.median(lat) * ms:.1f} ms, "
        f"p99 {_pctl(lat, 0.99) * ms:.1f} ms |",
        f"| baseline: GET /tip (same server, no work) | p50 {statistics.median(g) * ms:.1f} ms, "
        f"p99 {_pctl(g, 0.99) * ms:.1f} ms |",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=2000)
    ap.add_argument("--tips", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-report", action="store_true", help="Print only; do not rewrite docs/benchmarks.md.")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        rows = bench_extract(a.articles, a.seed) + bench_tips(a.tips, a.seed, Path(d))
    rows.append(f"| peak RSS (benchmark process) | {peak_rss_mb():.0f} MB |")
    body = ("| measure | result |\n|---|---|\n" + "\n".join(rows) +
            "\n\nTips carry one address (screened on arrival against the built-in catalogue), one txid, one amount "
            "and a narrative of 35-700 characters; the server is `chaintrace serve`'s app (one uvicorn worker) "
            "with the rate limit lifted; every tip is sealed (X25519 sealed box) before it is stored, and the "
            "benchmark checks the database holds no narrative text. Each stored tip is one durable SQLite commit (WAL, "
            "synchronous=FULL): on this shared disk the fsync dominates. The generated articles follow templates "
            "(every money and date form, gazetteer victims), so their accuracy is an upper bound; the golden "
            "tests (tests/test_intel_extract.py) hold the real and hand-written sentences.")
    print(body)
    if not a.no_report:
        cmd = "python bench/bench_intake.py " + " ".join(sys.argv[1:])
        write_section("intake", "Intake: news extraction and the tip line", cmd.strip(), body)


if __name__ == "__main__":
    main()
