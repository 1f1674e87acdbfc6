"""The flat-layout TagPack reader agrees with PyYAML wherever it answers, and declines everything else."""
from __future__ import annotations

import datetime as dt

import pytest
import yaml

from chaintrace.intel import tagpack
from chaintrace.intel.yamlblock import read_flat
from chaintrace.sim import simulate_btc
from tests.conftest import dataset

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def pyyaml(text: str, list_key: str):
    loader = LOADER(text)
    try:
        node = loader.get_single_node()
        return loader.construct_document(node), tagpack._item_lines(node, list_key)
    finally:
        loader.dispose()


def agrees(text: str, list_key: str = "tags") -> bool:
    """True when the fast reader answered (and equals PyYAML, lines included); False when it declined."""
    got = read_flat(text, list_key)
    if got is None:
        return False
    assert got == pyyaml(text, list_key)
    return True


def test_every_shared_tagpack_reads_the_same_as_pyyaml():
    root = dataset("graphsense-tagpacks")
    files = sorted(root.rglob("*.yaml"))
    assert files
    fast = 0
    for f in files:
        fast += agrees(f.read_text(encoding="utf-8"), "actors" if "actorpack" in f.name else "tags")
    assert fast >= len(files) // 2, f"only {fast} of {len(files)} packs took the fast reader"


def test_simulator_and_export_packs_take_the_fast_reader(tmp_path):
    sim = tmp_path / "sim"
    simulate_btc(sim, txs=2000, seed=3, scenario="dprk")
    text = (sim / "tags.yaml").read_text(encoding="utf-8")
    assert agrees(text)
    parsed = tagpack.parse_tagpack(sim / "tags.yaml")
    out = tmp_path / "export.yaml"
    tagpack.write_tagpack(parsed.tags, out, title="t: \"x\"", creator="c", description="d\n\té ü 漢")
    assert agrees(out.read_text(encoding="utf-8"))
    again = tagpack.parse_tagpack(out)
    assert [(t.address, t.label, t.category) for t in again.tags] == [(t.address, t.label, t.category)
                                                                      for t in parsed.tags]


FLAT = """%YAML 1.1
---
title: 'it''s a pack'
lastmod: 2024-02-02
is_public: yes
count: 0x1f
ratio: 1:30
none: ~
tags:
  # a comment line
  - address: "1A1zP1eP5QGefi2DMPTfTL5SL\\"mv7DivfNa"
    label:    spaced value  \x20
    confidence: 50
    lastmod: 2024-02-02 10:00:00

  - address: bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq
    label: "tab\\tand newline\\n"
description: after the list
"""


def test_flat_layout_scalars_resolve_as_pyyaml():
    assert agrees(FLAT)
    doc, lines = read_flat(FLAT, "tags")
    assert doc["lastmod"] == dt.date(2024, 2, 2) and doc["is_public"] is True and doc["count"] == 31
    assert doc["none"] is None and doc["ratio"] == 90 and doc["tags"][0]["label"] == "spaced value"
    assert lines == [11, 16]
    assert agrees(FLAT.replace("\n", "\r\n"))


@pytest.mark.parametrize("text", [
    "",
    "tags:\n",
    "tags: []\n",
    "title: x\ntags:\n- address: a\n  context:\n    role: deposit\n",     # nested mapping
    "tags:\n- address: a\n  labels: [x, y]\n",                             # flow collection
    "tags:\n- address: &a x\n- address: *a\n",                             # anchor and alias
    "tags:\n- address: !!str 12\n",                                        # explicit tag
    "tags:\n- address: a # comment\n",                                     # comment after a value
    "tags:\n- address: a\n  label: two\n    lines\n",                      # multi-line plain scalar
    "tags:\n- address: a\n  label: |\n    block\n",                        # block scalar
    'tags:\n- address: "\\x41"\n',                                        # YAML-only escape
    "tags:\n- address: a\n  address: b\n",                                 # duplicate key
    "yes: 1\ntags:\n- address: a\n",                                       # key that is not a string
    "tags:\n- address: a\n - label: b\n",                                  # bad indentation
    "tags:\n- address: a\rlabel: b\n",                                     # lone carriage return
    "tags:\n- address: a\u2028b\n",                                       # Unicode line separator
    "tags:\n- address: a\x07\n",                                           # non-printable
    "tags:\n- x\n",                                                        # scalar item
    "tags:\nfoo: bar\n- address: a\n",                                       # list after another key
    "---\ntags:\n- address: a\n---\ntags: []\n",                            # two documents
    "tags:\n-\taddress: a\n",                                              # tab
])
def test_other_layouts_are_left_to_pyyaml(text):
    assert read_flat(text, "tags") is None


def test_load_yaml_falls_back_and_reports_lines(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("title: x\ntags:\n- address: a\n  label: [unclosed\n")
    with pytest.raises(Exception, match=r"bad.yaml: line \d+, column \d+: malformed YAML"):
        tagpack.load_yaml(p, "tags")
    p.write_text("title: x\ntags:\n- address: a\n  context:\n    role: deposit\n- address: b\n")
    data, lines = tagpack.load_yaml(p, "tags")
    assert data["tags"][0]["context"] == {"role": "deposit"} and lines == [3, 6]
