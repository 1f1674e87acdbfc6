"""News extraction: every money and date form of news-extraction.md §3 as a unit table, the Arabic sample
article (UN panel, $316.4M) and hand-written English sentences as golden tests, HTML offsets, the CLI, and
the review queue (accept / merge proposal / reject) against the real intel registry."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from click.testing import CliRunner

from chaintrace.cli import main
from chaintrace.intel.extract import extract_text
from chaintrace.intel.extract.dates import find_dates
from chaintrace.intel.extract.money import find_money
from chaintrace.intel.extract.text import prepare, sentences
from tests.conftest import REPO

SAMPLE = REPO.parent / "shared" / "fixtures" / "news" / "un-panel-316m.ar.txt"

MONEY = [
    ("سرقة 316,4 مليون دولار", Decimal("316400000"), "USD"),
    ("سرقة ٣١٦٫٤ مليون دولار", Decimal("316400000"), "USD"),
    ("ملياري دولار", Decimal("2000000000"), "USD"),
    ("مليارين دولار", Decimal("2000000000"), "USD"),
    ("مليار دولار", Decimal("1000000000"), "USD"),
    ("5 ملايين دولار", Decimal("5000000"), "USD"),
    ("خمسة ملايين دولار", Decimal("5000000"), "USD"),
    ("ثلاثمئة وستة عشر مليون دولار", Decimal("316000000"), "USD"),
    ("مئتان وواحد وثمانون مليون دولار", Decimal("281000000"), "USD"),
    ("1,000,000 دولار", Decimal("1000000"), "USD"),
    ("1.7 مليار دولار", Decimal("1700000000"), "USD"),
    ("ثلاثة مليارات دولار", Decimal("3000000000"), "USD"),
    ("$81 million", Decimal("81000000"), "USD"),
    ("US$2 billion", Decimal("2000000000"), "USD"),
    ("$316.4m", Decimal("316400000"), "USD"),
    ("USD 23 million", Decimal("23000000"), "USD"),
    ("23 million USD", Decimal("23000000"), "USD"),
    ("$1.5bn", Decimal("1500000000"), "USD"),
    ("five million dollars", Decimal("5000000"), "USD"),
    ("$600,000", Decimal("600000"), "USD"),
    ("1,000 BTC", Decimal("1000"), "BTC"),
    ("100 ألف إيثر", Decimal("100000"), "ETH"),
    ("401,000 ETH", Decimal("401000"), "ETH"),
    ("€5 million", Decimal("5000000"), "EUR"),
    ("مليار و700 مليون دولار", Decimal("1700000000"), "USD"),
    ("مليار ونصف دولار", Decimal("1500000000"), "USD"),
    ("1 مليار ونصف المليار دولار", Decimal("1500000000"), "USD"),
    ("a billion and a half dollars", Decimal("1500000000"), "USD"),
    ("$2.5 billion", Decimal("2500000000"), "USD"),
    ("1.5bn dollars", Decimal("1500000000"), "USD"),
    ("١٬٥٠٠ بيتكوين", Decimal("1500"), "BTC"),
]


@pytest.mark.parametrize("text,value,currency", MONEY)
def test_money_forms(text, value, currency):
    p = prepare(text)
    found = find_money(p.norm)
    assert len(found) == 1, (text, found)
    assert found[0].value == value and found[0].currency == currency
    ev = p.span(found[0].start, found[0].end)
    assert text[ev["start"]:ev["end"]] == ev["text"]


@pytest.mark.parametrize("text", ["في 2016 من مصرف", "in 2016 the bank", "5 million users", "the 5 m run",
                                  "ثلاثة أشخاص", "Resolution 2397 of 2017"])
def test_not_money(text):
    assert find_money(prepare(text).norm) == []


def test_proclitic_accusative_inherits_currency():
    c = extract_text("ويشتبه في أن بيونغ يانغ قامت بسرقة 81 مليون دولار في 2016 من مصرف بنغلادش المركزي، "
                     "و60 مليوناً في 2017 من بنك الشرق الأقصى الدولي في تايوان.")
    assert [x["amount_usd"] for x in c] == [81000000, 60000000]
    assert c[1]["amount"]["currency_inferred"] is True and c[1]["amount"]["evidence"]["text"] == "60 مليوناً"


DATES = [  # text, doc date, start, end, granularity, qualifier
    ("نوفمبر 2020", None, "2020-11", "2020-11", "month", None),
    ("بين 2019 ونوفمبر 2020", None, "2019", "2020-11", "range", "between"),
    ("أواخر 2020", None, "2020-10", "2020-12", "part-of-year", "late"),
    ("أيلول 2020", None, "2020-09", "2020-09", "month", None),
    ("تشرين الثاني 2020", None, "2020-11", "2020-11", "month", None),
    ("كانون الثاني 2021", None, "2021-01", "2021-01", "month", None),
    ("3 سبتمبر 2020", None, "2020-09-03", "2020-09-03", "day", None),
    ("٣ سبتمبر ٢٠٢٠", None, "2020-09-03", "2020-09-03", "day", None),
    ("مطلع 2021", None, "2021-01", "2021-03", "part-of-year", "early"),
    ("منتصف 2021", None, "2021-05", "2021-08", "part-of-year", "mid"),
    ("في 2016", None, "2016", "2016", "year", None),
    ("between 2019 and November 2020", None, "2019", "2020-11", "range", "between"),
    ("late 2020", None, "2020-10", "2020-12", "part-of-year", "late"),
    ("in September 2020", None, "2020-09", "2020-09", "month", None),
    ("on Feb. 26, 2025", None, "2025-02-26", "2025-02-26", "day", None),
    ("from March 2022 to June 2022", None, "2022-03", "2022-06", "range", "between"),
    ("in the first half of 2022", None, "2022-01", "2022-06", "part-of-year", None),
    ("في 21 شباط/فبراير 2025", None, "2025-02-21", "2025-02-21", "day", None),
    ("خلال النصف الأول من عام 2024", None, "2024-01", "2024-06", "part-of-year", None),
    ("between January and March 2023", None, "2023-01", "2023-03", "range", "between"),
    ("from 2017 to 2023", None, "2017", "2023", "range", "between"),
    ("في سبتمبر", dt.date(2021, 2, 9), "2020-09", "2020-09", "month", None),   # after the publication month
    ("في يناير", dt.date(2021, 2, 9), "2021-01", "2021-01", "month", None),
]


@pytest.mark.parametrize("text,doc_date,start,end,gran,qual", DATES)
def test_date_forms(text, doc_date, start, end, gran, qual):
    p = prepare(text)
    ds = find_dates(p.norm, sentences(p.norm), [], doc_date)
    assert len(ds) == 1, (text, ds)
    d = ds[0].as_dict()
    assert (d["start"], d["end"], d["granularity"], d["qualifier"]) == (start, end, gran, qual)


@pytest.mark.parametrize("text,expect", [
    ("في سبتمبر 2020 سرقوا 281 مليون دولار. وسرقت 23 مليون دولار بعد شهر من ذلك.", "2020-10"),
    ("They stole $281 million in September 2020. A month later they stole $23 million.", "2020-10"),
    ("They hacked it in May 2019. Two months later they stole $5 million.", "2019-07"),
])
def test_relative_dates(text, expect):
    c = extract_text(text)
    assert c[-1]["date"]["start"] == expect and c[-1]["date"]["derived_from"] == "relative"


def _by_amount(cands):
    return {c["amount_usd"]: c for c in cands if c["amount_usd"] is not None}


def test_golden_arabic_sample():
    if not SAMPLE.exists():
        pytest.skip(f"fixture not available: {SAMPLE}")
    text = SAMPLE.read_text("utf-8")
    cands = extract_text(text, date="2021-02-09", doc_id=str(SAMPLE))
    by = _by_amount(cands)
    assert set(by) == {300000000, 316400000, 281000000, 23000000, 81000000, 60000000}
    agg = by[316400000]
    assert agg["kind"] == "aggregate" and (agg["date"]["start"], agg["date"]["end"]) == ("2019", "2020-11")
    assert agg["amount"]["evidence"]["text"] == "316,4 مليون دولار"
    k = by[281000000]
    assert k["kind"] == "incident" and k["date"]["start"] == "2020-09" and k["date"]["year_inferred"]
    assert k["victim"]["type"] == "exchange" and k["attack_type"]["type"] == "exchange_hack"
    assert k["source"]["id"] == "un-panel" and k["actor"]["id"] == "dprk" and k["actor"]["inherited"]
    assert by[23000000]["date"]["start"] == "2020-10" and by[23000000]["date"]["derived_from"] == "relative"
    bb, feib = by[81000000], by[60000000]
    assert (bb["victim"]["id"], bb["date"]["start"], bb["actor"]["attribution"]) == ("bangladesh-bank", "2016", "suspected")
    assert bb["actor"]["evidence"]["text"] == "بيونغ يانغ"
    assert (feib["victim"]["id"], feib["date"]["start"], feib["actor"]["attribution"]) == ("feib", "2017", "suspected")
    assert feib["amount"]["currency_inferred"]
    late = [c for c in cands if c["amount_usd"] is None and c["date"] and c["date"]["qualifier"] == "late"]
    assert late and (late[0]["date"]["start"], late[0]["date"]["end"]) == ("2020-10", "2020-12")
    for c in cands:           # every evidence span quotes the original text at its offsets
        for k in ("amount", "date", "victim", "actor", "attack_type", "source"):
            if c.get(k):
                e = c[k]["evidence"]
                assert text[e["start"]:e["end"]] == e["text"] and e["text"]


ENGLISH = """North Korea's Lazarus Group, believed to work for the Reconnaissance General Bureau, stole $81 million from Bangladesh Bank in February 2016 and $60 million from Far Eastern International Bank in October 2017.

The FBI confirmed on Feb. 26, 2025 that TraderTraitor was responsible for the theft of about US$1.5 billion (401,000 ETH) from Bybit.

North Korean hackers stole a total of $1.34 billion in 2024, according to Chainalysis.

The Rewards for Justice program offers a reward of up to $5 million for information on DPRK money laundering.

Hackers attempted to steal $951 million through fraudulent SWIFT transfer requests in 2016.

The attackers demanded a ransom of 50 BTC from the hospital in mid-2022.
"""


def test_golden_english():
    cands = extract_text(ENGLISH, date="2025-03-01")
    by = _by_amount(cands)
    bb, feib, bybit = by[81000000], by[60000000], by[1500000000]
    assert (bb["kind"], bb["victim"]["id"], bb["date"]["start"], bb["actor"]["id"], bb["actor"]["attribution"]) == \
        ("incident", "bangladesh-bank", "2016-02", "lazarusgroup", "suspected")
    assert (feib["victim"]["id"], feib["date"]["start"]) == ("feib", "2017-10")
    assert (bybit["victim"]["id"], bybit["date"]["start"], bybit["actor"]["id"], bybit["actor"]["attribution"]) == \
        ("bybit", "2025-02-26", "tradertraitor", "confirmed")
    assert bybit["crypto_amounts"][0]["asset"] == "ETH" and bybit["crypto_amounts"][0]["value"] == "401000"
    assert bybit["amount"]["qualifier"] == "about" and bybit["source"]["id"] == "fbi"
    assert by[1340000000]["kind"] == "aggregate" and by[1340000000]["source"]["id"] == "chainalysis"
    assert by[5000000]["kind"] == "reward" and by[5000000]["amount"]["qualifier"] == "up_to"
    assert by[951000000]["kind"] == "attempt" and by[951000000]["attack_type"]["type"] == "swift_fraud"
    ransom = [c for c in cands if c["kind"] == "ransom_demand"]
    assert ransom and ransom[0]["amount"]["currency"] == "BTC" and ransom[0]["amount_usd"] is None
    assert not any(c["kind"] == "incident" and c["amount_usd"] == 5000000 for c in cands)   # a reward is not a theft


def test_html_offsets_map_to_original():
    html = ("<html><body><h1>Heist</h1><p>Hackers <b>stole</b> &dollar;81&nbsp;million from "
            "<a href='x'>Bangladesh Bank</a> in February 2016.</p><script>var x='$5 million';</script></body></html>")
    c = extract_text(html)
    assert len(c) == 1 and c[0]["amount_usd"] == 81000000
    v = c[0]["victim"]["evidence"]
    assert html[v["start"]:v["end"]] == "Bangladesh Bank"
    a = c[0]["amount"]["evidence"]
    assert html[a["start"]:a["end"]] == a["text"] and a["text"].startswith("&dollar;81")


def test_cli_extract_json_and_errors(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("Hackers stole $81 million from Bangladesh Bank in February 2016.", "utf-8")
    r = CliRunner().invoke(main, ["--data", str(tmp_path / "ws"), "intel", "extract", str(f), "--format", "json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["candidates"][0]["amount_usd"] == 81000000 and d["documents"][0]["candidates"] == 1
    r = CliRunner().invoke(main, ["intel", "extract", str(f), "--date", "2021-13-01"])
    assert r.exit_code == 2 and "YYYY-MM-DD" in r.output
    bad = tmp_path / "b.txt"
    bad.write_bytes(b"abc \xff\xfe")
    r = CliRunner().invoke(main, ["intel", "extract", str(bad)])
    assert r.exit_code == 2 and "byte offset 4" in r.output


def test_review_queue(tmp_path):
    ws = str(tmp_path / "ws")
    f = tmp_path / "a.txt"
    f.write_text("Hackers stole $81 million from Bangladesh Bank in February 2016. In March 2024 hackers stole "
                 "$12 million from the crypto exchange Zorblex, according to Elliptic.", "utf-8")
    run = CliRunner().invoke
    r = run(main, ["--data", ws, "intel", "extract", str(f), "--save", "--format", "json"])
    assert r.exit_code == 0, r.output
    ids = {c["amount_usd"]: c["id"] for c in json.loads(r.output)["candidates"]}
    # the Bangladesh Bank candidate duplicates the catalogue: a merge is proposed, nothing is created
    r = run(main, ["--data", ws, "intel", "candidates", "accept", ids[81000000], "--format", "json"])
    d = json.loads(r.output)
    assert d["status"] == "new" and d["proposed_merges"][0]["incident_id"] == "bangladesh-bank-2016"
    r = run(main, ["--data", ws, "intel", "candidates", "merge", ids[81000000], "--into", "bangladesh-bank-2016"])
    assert r.exit_code == 0, r.output
    r = run(main, ["--data", ws, "intel", "candidates", "accept", ids[12000000], "--format", "json"])
    assert r.exit_code == 0, r.output
    iid = json.loads(r.output)["history"][-1]["incident_id"]
    r = run(main, ["--data", ws, "intel", "incidents", "--format", "json"])
    inc = {i["incident_id"]: i for i in json.loads(r.output)["incidents"]}
    new = inc[iid]
    assert new["victim"] == "Zorblex" and Decimal(str(new["amount_usd"])) == 12000000
    assert "Elliptic" in new["sources"] and "chars" in new["notes"]
    assert any(str(f) in s for s in inc["bangladesh-bank-2016"]["sources"])
    r = run(main, ["--data", ws, "intel", "candidates", "accept", ids[12000000]])
    assert r.exit_code == 2 and "accepted already" in r.output
    r = run(main, ["--data", ws, "intel", "candidates", "list", "--format", "json"])
    assert {c["status"] for c in json.loads(r.output)["candidates"]} == {"merged", "accepted"}


NEWS = [  # hand-written news sentences: (text, publication date, kind, amount_usd, date start, victim id, actor id)
    ("North Korean hackers stole a record $1.5 billion in crypto from the Dubai-based exchange Bybit on Friday, "
     "the FBI said.", "2025-02-23", "incident", 1500000000, "2025-02-21", "bybit", "dprk"),
    ("In 2022, hackers linked to North Korea stole an estimated $1.7 billion, according to Chainalysis.", None,
     "aggregate", 1700000000, "2022", None, "dprk"),
    ("The Ronin Network, which supports the Axie Infinity game, lost $625 million in March 2022.", None,
     "incident", 625000000, "2022-03", "ronin", None),
    ("Atomic Wallet users lost more than $100 million in early June 2023.", None, "incident", 100000000,
     "2023-06-01", "atomic-wallet", None),
    ("WazirX, India's largest crypto exchange, was hacked in July 2024, losing $235 million.", None, "incident",
     235000000, "2024-07", "wazirx", None),
    ("DMM Bitcoin lost 4,502.9 BTC, worth about $305 million at the time, in May 2024.", None, "incident",
     305000000, "2024-05", "dmm-bitcoin", None),
    ("سرق قراصنة كوريون شماليون ما قيمته 1,5 مليار دولار من منصة بايبت في 21 فبراير 2025.", None, "incident",
     1500000000, "2025-02-21", "bybit", "dprk"),
    ("خسرت منصة WazirX الهندية 235 مليون دولار في تموز/يوليو 2024 إثر عملية اختراق.", None, "incident", 235000000,
     "2024-07", "wazirx", None),
    ("في أيار (مايو) 2024 سرق قراصنة 305 ملايين دولار من منصة DMM Bitcoin اليابانية.", None, "incident", 305000000,
     "2024-05", "dmm-bitcoin", None),
    ("سرق القراصنة 20 مليون دولار العام الماضي من منصة بايبت.", "2025-02-23", "incident", 20000000, "2024", "bybit",
     None),
    ("وأعلنت وزارة الخارجية الأمريكية عن مكافأة تصل إلى 5 ملايين دولار مقابل معلومات عن غسل الأموال.", None,
     "reward", 5000000, None, None, None),
    ("North Korea-linked hackers have stolen more than $3 billion in crypto since 2017, the UN panel said.",
     "2024-02-01", "aggregate", 3000000000, "2017", None, "dprk"),
]


@pytest.mark.parametrize("text,pub,kind,amount,start,victim,actor", NEWS)
def test_news_sentences(text, pub, kind, amount, start, victim, actor):
    c = [x for x in extract_text(text, date=pub) if x["amount_usd"] == amount]
    assert len(c) == 1, extract_text(text, date=pub)
    c = c[0]
    assert c["kind"] == kind
    assert (c["date"] or {}).get("start") == start
    assert (c["victim"] or {}).get("id") == victim
    assert (c["actor"] or {}).get("id") == actor


def test_crypto_amount_and_its_usd_value_are_one_candidate():
    c = extract_text("DMM Bitcoin lost 4,502.9 BTC, worth about $305 million at the time, in May 2024.")
    assert len(c) == 1 and c[0]["crypto_amounts"][0] == {**c[0]["crypto_amounts"][0], "value": "4502.9", "asset": "BTC"}
