"""Issue 12: one shared registry with generations, sanctions list history, any watch-list, the screening table,
and issue 11's "never silently wrong" lookups -- on the real files of ../shared/datasets."""
from __future__ import annotations

import json
import shutil
import threading
from decimal import Decimal

import pytest
from click.testing import CliRunner

from chaintrace import intel
from chaintrace.cli import main
from chaintrace.errors import UserError
from chaintrace.intel.lookup import illicit_table
from chaintrace.intel.registry import Registry, reader
from tests.conftest import dataset

RONIN = "0x098B716B8Aaf21512996dC57EB0615e2383E2f96"  # added to the 2019 Lazarus Group entry in April 2022
TORNADO = "0xd90e2f925DA726b50C4Ed8D0Fb90Ad053324F31b"  # listed 2022-08-08, delisted 2025-03-21
FORTA = ("forta-labelled-datasets", "labels", "1")


@pytest.fixture(scope="module")
def lists_registry(tmp_path_factory):
    """The 2024-09 lists, the 2025-11-19 XML and the 2025-12 lists, imported once through the CLI."""
    path = tmp_path_factory.mktemp("lists") / "registry"
    run = CliRunner().invoke
    for args in (["0xB10C-lists-2024-09", "--as-of", "2024-09-27"], ["sdn_advanced_2025-11-19.xml.bz2"],
                 ["brave-intl-lists-2025-12", "--as-of", "2025-12-04"]):
        r = run(main, ["intel", "import", "ofac-sdn", "--registry", str(path), str(dataset("ofac-sdn", args[0])),
                       *args[1:]])
        assert r.exit_code == 0, r.output
    return path


def lookup_json(registry, *args) -> list[dict]:
    r = CliRunner().invoke(main, ["intel", "lookup", "--registry", str(registry), "--format", "json", *args])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_sanction_dates_from_the_list_history(lists_registry):
    out = lookup_json(lists_registry, RONIN, "--at", "2020-01-01")[0]
    assert out["sanctioned"] is not True and out["sanctioned"] is None  # unknown: the entry date is a lower bound
    assert "no later than 2024-09-27" in out["sanction_reason"] and "2019-09-13" in out["sanction_reason"]
    assert lookup_json(lists_registry, RONIN, "--at", "2019-01-01")[0]["sanctioned"] is False  # before the entry
    assert lookup_json(lists_registry, RONIN)[0]["sanctioned"] is True
    today = lookup_json(lists_registry, TORNADO)[0]
    assert today["sanctioned"] is False and "removed" in today["sanction_reason"]
    then = lookup_json(lists_registry, TORNADO, "--at", "2024-10-01")[0]
    assert then["sanctioned"] is True and then["sanctions"][0]["valid_to"] == "2025-11-19"
    assert lookup_json(lists_registry, TORNADO, "--at", "2023-06-01")[0]["sanctioned"] is None  # before any list
    assert today["generation"] == then["generation"] == 3
    # the text names the list version and its age
    r = CliRunner().invoke(main, ["intel", "lookup", "--registry", str(lists_registry), "--at", "2025-01-01", TORNADO])
    assert "OFAC SDN of 2024-09-27 (96 days old)" in r.output and "registry generation 3" in r.output


def test_second_workspace_sees_the_registry_without_importing(lists_registry, tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINTRACE_REGISTRY", str(lists_registry))
    for ws in ("case-a", "case-b"):
        r = CliRunner().invoke(main, ["--data", str(tmp_path / ws), "intel", "lookup", "--format", "json", RONIN])
        assert r.exit_code == 0 and json.loads(r.output)[0]["sanctioned"] is True, r.output
    assert not (tmp_path / "case-b" / "catalog.duckdb").exists()  # nothing written to the workspace


def test_generations_readers_never_see_a_mix(lists_registry, tmp_path):
    reg = Registry(tmp_path / "reg")
    shutil.copytree(lists_registry, reg.path)
    g = reg.generation
    with reader(reg) as old:
        n_old = old.execute("SELECT count(*) FROM intel.tags").fetchone()[0]
        intel.import_paths(reg, "tagpack", [dataset("graphsense-tagpacks", "packs", "lazarus.yaml")])
        assert reg.generation == g + 1
        assert old.execute("SELECT count(*) FROM intel.tags").fetchone()[0] == n_old  # still its generation
    with reader(reg) as new:
        assert new.execute("SELECT count(*) FROM intel.tags").fetchone()[0] == n_old + 21
    bad = tmp_path / "bad.yaml"
    bad.write_text("tags: [\n")
    with pytest.raises(UserError):
        intel.import_paths(reg, "tagpack", [bad])
    assert reg.generation == g + 1  # a failed import publishes nothing
    # lookups while imports run: every answer is one whole generation
    seen = []

    def look():
        for _ in range(20):
            r = intel.lookup(reg, [RONIN])[0]
            seen.append((r["generation"], r["sanctioned"]))

    t = threading.Thread(target=look)
    t.start()
    intel.import_paths(reg, "tagpack", [dataset("graphsense-tagpacks", "packs", "ransomware.yaml")])
    t.join()
    assert seen and all(s is True for _, s in seen) and {gen for gen, _ in seen} <= {g + 1, g + 2}


def test_forta_watch_list_imports_and_every_address_is_phishing(tmp_path):
    csv_path = dataset(*FORTA, "etherscan_malicious_labels.csv")
    reg = tmp_path / "reg"
    r = CliRunner().invoke(main, ["intel", "import", "list", "--registry", str(reg), str(csv_path),
                                  "--address-column", "banned_address", "--label-column", "wallet_tag",
                                  "--abuse", "phishing", "--chain", "eth", "--format", "json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    rows = csv_path.read_text().splitlines()[1:]
    assert rep["totals"]["tags"] + rep["totals"]["rejected"] + rep["totals"]["duplicates"] == len(rows) == 7780
    assert all("checksum" in x["reason"] for x in rep["rejects"])  # mixed-case rows with a wrong EIP-55 checksum
    addrs = tmp_path / "addrs.txt"
    addrs.write_text("\n".join(x.split(",", 1)[0] for x in csv_path.read_text().splitlines()))  # with its header
    out = lookup_json(reg, "--file", str(addrs))
    assert len(out) == 7780 and all("phishing" in x["categories"] for x in out)
    assert any(t["label"] == "Fake_Phishing1772" for x in out for t in x["tags"])


def test_contract_and_creator_columns_and_other_formats(tmp_path):
    reg = Registry(tmp_path / "reg")
    rep = intel.import_paths(reg, "list", [dataset(*FORTA, "malicious_smart_contracts.csv")], chain="eth",
                             address_columns=("contract_address", "contract_creator"), label_column="contract_tag",
                             abuse="exploit")
    assert rep["totals"]["tags"] > 753 and rep["totals"]["rejected"] == 0
    hit = intel.lookup(reg, ["0x98f5b0a99f258a09403d965647ee9d53677914af"])[0]  # a creator
    assert hit["known"] and hit["tags"][0]["label"].endswith("(contract_creator)")
    # an exchange's own blacklist in JSON, JSON lines and plain text
    (tmp_path / "bl.json").write_text(json.dumps([{"addr": RONIN, "why": "hack"}, {"addr": "0xZZ", "why": "typo"}]))
    (tmp_path / "bl.jsonl").write_text(json.dumps({"address": "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"}) + "\n")
    (tmp_path / "bl.txt").write_text("# our blacklist\nbc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq\nhello\n")
    r = intel.import_paths(reg, "list", [tmp_path / "bl.json"], address_columns=("addr",), label_column="why")
    assert r["totals"]["tags"] == 1 and r["rejects"][0]["address"] == "0xZZ"
    r = intel.import_paths(reg, "list", [tmp_path / "bl.jsonl", tmp_path / "bl.txt"], category="black_list")
    assert r["totals"]["tags"] == 2 and r["rejects"][0]["address"] == "hello" and r["rejects"][0]["line"] == 3
    (tmp_path / "bl2.json").write_text(json.dumps({"rows": [{"addr": RONIN}]}))
    with pytest.raises(UserError, match="no column 'nope'"):
        intel.import_paths(reg, "list", [tmp_path / "bl2.json"], address_columns=("nope",))
    with pytest.raises(UserError, match="only for `intel import list`"):
        intel.import_paths(reg, "tagpack", [tmp_path / "bl.json"], address_columns=("addr",))


def test_invalid_addresses_and_chains_are_errors(tmp_path):
    run = CliRunner().invoke
    for bad in ("hello", "0xZZ", "", "1a1zp1ep5qgefi2dmptftl5slmv7divfna"):
        r = run(main, ["intel", "lookup", bad])
        assert r.exit_code == 2 and ("not a valid address" in r.output or "empty" in r.output), (bad, r.output)
    r = run(main, ["intel", "lookup", "--chain", "etherum", RONIN])
    assert r.exit_code == 2 and "valid names" in r.output and "eth" in r.output
    r = run(main, ["intel", "lookup", "--chain", "ethereum", "--format", "json", RONIN])
    assert r.exit_code == 0 and json.loads(r.output)[0]["verdict"] == "known"  # built-in Ronin incident seed
    f = tmp_path / "batch.txt"
    f.write_text(f"{RONIN}\nhello\n0xZZ\n")
    r = run(main, ["intel", "lookup", "--file", str(f)])
    assert r.exit_code == 0 and "2 invalid" in r.output and "hello: invalid" in r.output
    out = intel.lookup(None, [RONIN, "hello"])
    assert [x["verdict"] for x in out] == ["known", "invalid"]


def test_no_sanctions_list_is_unknown_and_warned():
    r = CliRunner().invoke(main, ["intel", "lookup", RONIN])
    assert r.exit_code == 0 and "no sanctions list imported" in r.output
    out = intel.lookup(Registry(".does-not-exist"), [RONIN])[0]
    assert out["sanctioned"] is None and out["sanction_reason"] == "no sanctions list imported"


def test_illicit_table_for_screening(lists_registry):
    reg = Registry(lists_registry)
    then = illicit_table(reg, "eth", at="2024-10-01")
    now = illicit_table(reg, "ethereum")
    assert then.schema.metadata[b"generation"] == b"3" and json.loads(then.schema.metadata[b"sanctions_lists"])
    def rows(t, key):
        return [r for r in t.to_pylist() if r["addr_key"] == key.lower() and r["origin"] == "sanction"]
    assert rows(then, TORNADO)[0]["sanctioned"] is True and rows(then, TORNADO)[0]["trust"] == "authority"
    assert rows(now, TORNADO) == []  # removed by 2025-11-19: left out today
    assert rows(now, RONIN)[0]["sanctioned"] is True and rows(now, RONIN)[0]["entity"] == "Lazarus Group"
    assert rows(illicit_table(reg, "eth", at="2020-01-01"), RONIN)[0]["sanctioned"] is None
    assert {r["origin"] for r in now.to_pylist()} == {"sanction", "incident"}


def test_tagpack_rows_never_snapped(tmp_path):
    """Issue 11: unknown confidence, unknown currency, non-string addresses are rejected with the reason."""
    pack = tmp_path / "pack.yaml"
    pack.write_text("title: t\ncreator: me\ntags:\n"
                    "- {address: 0x098b716b8aaf21512996dc57eb0615e2383e2f96, label: unquoted, currency: ETH}\n"
                    "- {address: '0x098b716b8aaf21512996dc57eb0615e2383e2f96', label: c, currency: ETH, confidence: 999}\n"
                    "- {address: [1, 2], label: list, currency: ETH}\n"
                    "- {address: 'DH5yaieqoZN36fDVciNyRueRGvGLR3mr7L', label: x, currency: LUNA}\n"
                    "- {address: '0x098b716b8aaf21512996dc57eb0615e2383e2f96', label: ok, currency: ETH, confidence: 50}\n")
    r = intel.import_paths(Registry(tmp_path / "reg"), "tagpack", [pack])
    why = {x["line"]: (x["address"], x["reason"]) for x in r["rejects"]}
    assert r["totals"]["tags"] == 1 and len(why) == 4
    assert why[4][0] == "0x098b716b8aaf21512996dc57eb0615e2383e2f96" and "quote it" in why[4][1]
    assert "undefined confidence '999'" in why[5][1]
    assert "is a list, not a string" in why[6][1]
    assert "unknown currency 'LUNA'" in why[7][1]


def test_licences_travel_with_the_data(tmp_path):
    """Scraped explorer labels are restricted by default: exports leave them out and say so; OFAC data is
    public domain; --include-restricted exports everything."""
    reg = tmp_path / "reg"
    labels = dataset("etherscan-labels-brianleect")
    files = sorted(p for p in labels.rglob("*.json"))
    assert files
    run = CliRunner().invoke
    r = run(main, ["intel", "import", "labels", "--registry", str(reg), str(files[0]), "--chain", "eth"])
    assert r.exit_code == 0, r.output
    pack = dataset("graphsense-tagpacks", "packs", "lazarus.yaml")
    r = run(main, ["intel", "import", "tagpack", "--registry", str(reg), str(pack), "--licence", "MIT"])
    assert r.exit_code == 0, r.output
    imports = intel.imports(Registry(reg))
    assert [(x["kind"], x["restricted"]) for x in imports] == [("labels", True), ("tagpack", False)]
    assert imports[1]["licence"] == "MIT" and "redistribution not permitted" in imports[0]["licence"]
    out = tmp_path / "x.csv"
    r = run(main, ["intel", "export", "csv", "--registry", str(reg), str(out), "--include", "tags"])
    assert r.exit_code == 0 and "left out" in r.output and "--include-restricted" in r.output, r.output
    n_public = len(out.read_text().splitlines()) - 1
    assert n_public == 21  # the TagPack's tags only
    r = run(main, ["intel", "export", "csv", "--registry", str(reg), str(out), "--include", "tags",
                   "--include-restricted"])
    assert r.exit_code == 0 and "left out" not in r.output
    assert len(out.read_text().splitlines()) - 1 > n_public


def test_trust_order_token_contracts_and_service_entities(tmp_path):
    """Scraped explorer labels: the USDT contract is a token, never an exchange sink; Coinbase's numbered
    wallets are one entity (actor coinbase) keeping their own labels; a curated TagPack tag outranks a
    scraped label on the same address and the disagreement is shown."""
    reg = Registry(tmp_path / "reg")
    labels = dataset("etherscan-labels-brianleect", "data", "etherscan", "combined", "combinedAllLabels.json")
    intel.import_paths(reg, "labels", [labels], chain="eth")
    usdt, cb1 = "0xdac17f958d2ee523a2206206994597c13d831ec7", "0x71660c4005ba85c37ccec55d0c4493e66fe775d3"
    tags = {t.address: t for t in intel.load_tags(reg, "eth")}
    assert tags[usdt].category == "token" and not tags[usdt].is_service
    assert tags[cb1].category == "exchange" and tags[cb1].actor == "coinbase" and tags[cb1].label == "Coinbase 1"
    coinbase = [t for t in tags.values() if t.actor == "coinbase"]
    assert len(coinbase) > 5 and len({t.label for t in coinbase}) == len(coinbase)
    pack = tmp_path / "p.yaml"
    pack.write_text(f"title: t\ncreator: me\ntags:\n- {{address: '{cb1}', label: seized, currency: ETH, "
                    f"category: perpetrator, confidence: forensic_investigation}}\n")
    intel.import_paths(reg, "tagpack", [pack])
    r = intel.lookup(reg, [cb1])[0]
    assert r["primary"]["trust"] == "curated" and r["primary"]["category"] == "perpetrator"
    assert r["conflicts"] and r["conflicts"][0]["category"] == "exchange" and r["conflicts"][0]["trust"] == "scraped"


def test_tayvano_hack_index_imports_as_incidents(tmp_path):
    """`intel import incidents` learns an index without an id column: ids synthesised (and said so), incidents
    already in the catalogue (same date and victim) are not counted twice."""
    src = dataset("dprk-hacks-tayvano", "dprk_hack_index.csv")
    reg = Registry(tmp_path / "reg")
    r = intel.import_paths(reg, "incidents", [src])
    rows = len(src.read_text().splitlines()) - 1
    t = r["totals"]
    assert rows == 87 and t["incidents"] + t["duplicates"] == rows and t["duplicates"] >= 9
    assert any("synthesised" in n for n in r["files"][0]["notes"])
    tl = intel.timeline(reg, since=2025)
    assert [i["victim"] for i in tl["incidents"]].count("Bybit") == 1
    shib = [i for i in tl["incidents"] if i["victim"] == "Shibarium"][0]
    assert shib["incident_id"].startswith("idx-2025-09-11") and Decimal(str(shib["amount_usd"])) == Decimal(2_000_000)
