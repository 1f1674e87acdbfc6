"""Registry schema versions: a registry written before the licence columns (layout version 1) opens, looks up
and takes new imports; its layout is migrated once, on open, into a new generation."""
from __future__ import annotations

import duckdb
import pytest
from click.testing import CliRunner

from chaintrace import intel
from chaintrace.cli import main
from chaintrace.intel import addresses as addr
from chaintrace.intel import registry as reg
from chaintrace.intel.registry import Registry, reader
from tests.conftest import dataset

OLD_ADDRESS = "0x098B716B8Aaf21512996dC57EB0615e2383E2f96"
LAZARUS_BTC = "134r8iHv69xdT6p5qVKTsHrcUEuBVZAYak"  # in the GraphSense lazarus.yaml TagPack


def old_layout_ddl() -> list[str]:
    """The registry DDL as it was before licences (commit d60f6df): ``imports`` ends with ``options``,
    ``incidents`` ends with ``tlp``-less ``line``, and no ``schema_version`` row."""
    out = []
    for stmt in reg.DDL:
        stmt = stmt.replace(", licence VARCHAR, restricted BOOLEAN", "")
        stmt = stmt.replace(", line INTEGER, tlp VARCHAR, confidence INTEGER, producer VARCHAR, context VARCHAR)",
                            ", line INTEGER)")
        out.append(stmt)
    assert out != reg.DDL
    return out


def make_old_registry(path) -> Registry:
    """A one-generation registry in the version-1 layout holding one scraped label (an import of kind
    ``labels``, which the licence feature restricts by default)."""
    (path / "generations").mkdir(parents=True)
    con = duckdb.connect(str(path / "generations" / "g000001.duckdb"))
    for stmt in old_layout_ddl():
        con.execute(stmt)
    n_cols = con.execute("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'intel' "
                         "AND table_name = 'imports'").fetchone()[0]
    assert n_cols == 23  # the layout of the error "table imports has 23 columns but 25 values"
    con.execute("INSERT INTO intel.imports VALUES (1, 'labels', '/old/labels.json', 'labels.json', 'ab', NULL, "
                "TIMESTAMP '2026-12-01 00:00:00', NULL, NULL, NULL, NULL, NULL, NULL, 1, 0, 0, 0, 0, 0, 0, 0, "
                "NULL, '{}')")
    con.execute("INSERT INTO intel.tags (import_id, kind, chain, address, addr_key, label, category, source, "
                "confidence, line) VALUES (1, 'labels', 'eth', ?, ?, 'Old Exchange 1', 'exchange', 'old-scrape', "
                "50, 1)", [OLD_ADDRESS, addr.key_any(OLD_ADDRESS)])
    con.execute("CHECKPOINT")
    con.close()
    (path / "CURRENT").write_text("g000001\n")
    return Registry(path)


def test_old_layout_opens_migrates_imports_and_looks_up(tmp_path):
    r = make_old_registry(tmp_path / "registry")
    _, hits = intel.lookup_hits(make_old_registry(tmp_path / "second"), [OLD_ADDRESS, LAZARUS_BTC])  # batch path
    assert set(hits.query.tolist()) == {0} and 0 in hits.kind.tolist()  # the old tag (KIND_TAG)
    # open + look up: the layout is migrated into generation 2 first
    hit = intel.lookup(r, [OLD_ADDRESS])[0]
    assert hit["known"] and hit["tags"][0]["label"] == "Old Exchange 1"
    assert r.generation == 2
    with reader(r) as con:
        assert reg.schema_version(con) == reg.SCHEMA_VERSION
        lic, restricted = con.execute("SELECT licence, restricted FROM intel.imports WHERE import_id = 1").fetchone()
    assert restricted is True and "redistribution not permitted" in lic  # the default terms of scraped labels
    # an import into the migrated registry (before: "table imports has 23 columns but 25 values")
    pack = dataset("graphsense-tagpacks", "packs", "lazarus.yaml")
    res = CliRunner().invoke(main, ["intel", "import", "tagpack", "--registry", str(r.path), str(pack),
                                    "--licence", "MIT"])
    assert res.exit_code == 0, res.output
    hits = intel.lookup(r, [OLD_ADDRESS, LAZARUS_BTC])
    assert [h["known"] for h in hits] == [True, True]
    assert "lazarus" in hits[1]["tags"][0]["label"].lower() or hits[1]["tags"][0].get("actor")
    kinds = [(x["kind"], x["restricted"], x["licence"]) for x in intel.imports(r)]
    assert kinds[0][:2] == ("labels", True) and kinds[1] == ("tagpack", False, "MIT")


def test_writer_migrates_an_old_generation_directly(tmp_path):
    """A writer opened on an old generation (no reader first) migrates it in the generation it writes."""
    r = make_old_registry(tmp_path / "registry")
    with r.writer() as con:
        assert reg.schema_version(con) == reg.SCHEMA_VERSION
    assert r.generation == 2
    with duckdb.connect(str(r.file(1)), read_only=True) as con:  # published generations are never changed
        assert reg.schema_version(con) == 1
    rep = intel.import_paths(r, "tagpack", [dataset("graphsense-tagpacks", "packs", "lazarus.yaml")])
    assert rep["totals"]["tags"] > 0 and r.generation == 3
    with reader(r) as con:
        assert reg.schema_version(con) == reg.SCHEMA_VERSION
        cols = [c[0] for c in con.execute("SELECT column_name FROM information_schema.columns WHERE "
                                          "table_schema = 'intel' AND table_name = 'incidents'").fetchall()]
    assert {"tlp", "confidence", "producer", "context"} <= set(cols)
    assert intel.lookup(r, [OLD_ADDRESS])[0]["known"]


def test_new_registry_records_its_version_and_newer_layouts_are_refused(tmp_path):
    r = Registry(tmp_path / "registry")
    intel.import_paths(r, "tagpack", [dataset("graphsense-tagpacks", "packs", "lazarus.yaml")])
    with reader(r) as con:
        assert reg.schema_version(con) == reg.SCHEMA_VERSION
    future = reg.SCHEMA_VERSION + 1
    with r.writer() as con:
        con.execute("UPDATE intel.meta SET value = ? WHERE key = 'schema_version'", [str(future)])
    with pytest.raises(reg.SchemaError, match=f"schema version {future} is newer"):
        intel.import_paths(r, "tagpack", [dataset("graphsense-tagpacks", "packs", "ofac.yaml")])
