"""GraphSense TagPack (streamed) and ActorPack writers (YAML) for the simulators.

TagPack: header fields (title, creator, description, currency, network, lastmod, source) are written
once; each tag carries address, label, category (DW-VA / GraphSense concept id), confidence (GraphSense
confidence id), optional abuse and actor (a GraphSense actor id: every service tag names its service), and
a JSON ``context`` naming the simulated entity, so the pack validates with ``graphsense-cli tagpack-tool
tagpack validate``.

ActorPack (:func:`write_actorpack`): one actor per simulated service with the mandatory fields of the
GraphSense ActorPack schema (id, uri, label, lastmod, categories) and a JSON context naming the entity;
``chaintrace intel import actorpack`` reads it, and traces then name each receiving service by its label.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from chaintrace.model.tags import CATEGORIES

CONFIDENCES = {"override", "ownership", "ledger_immanent", "manual_transaction", "service_api",
               "forensic_investigation", "authority_data", "trusted_provider", "service_data", "forensic",
               "untrusted_transaction", "web_crawl", "heuristic", "unknown"}


def _q(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


class TagPackWriter:
    def __init__(self, path: Path, *, title: str, creator: str, description: str, currency: str, network: str,
                 lastmod: str, source: str):
        self.path = Path(path)
        self.body_path = self.path.with_name(self.path.name + ".body")
        self.body = open(self.body_path, "w")
        self.header = {"title": title, "creator": creator, "description": description, "currency": currency,
                       "network": network, "lastmod": lastmod, "source": source}
        self.count = 0
        self.by_category: dict[str, int] = {}

    def add(self, address: str, label: str, category: str, confidence: str, *, abuse: str | None = None,
            actor: str | None = None, context: dict | None = None) -> None:
        if category not in CATEGORIES:
            raise ValueError(f"unknown tag category {category!r}")
        if confidence not in CONFIDENCES:
            raise ValueError(f"unknown confidence {confidence!r}")
        lines = [f"- address: {_q(address)}", f"  label: {_q(label)}", f"  category: {category}",
                 f"  confidence: {confidence}"]
        if abuse:
            lines.append(f"  abuse: {abuse}")
        if actor:
            lines.append(f"  actor: {actor}")
        if context:
            lines.append(f"  context: {_q(json.dumps(context, sort_keys=True))}")
        self.body.write("\n".join(lines) + "\n")
        self.count += 1
        self.by_category[category] = self.by_category.get(category, 0) + 1

    def close(self, lastmod: str | None = None) -> None:
        if lastmod:
            self.header["lastmod"] = lastmod
        self.body.close()
        with open(self.path, "w") as out:
            for k, v in self.header.items():
                out.write(f"{k}: {v if k == 'lastmod' else _q(v)}\n")
            out.write("tags:\n" if self.count else "tags: []\n")
            with open(self.body_path) as b:
                while chunk := b.read(1 << 20):
                    out.write(chunk)
        self.body_path.unlink()


def actor_id(name: str) -> str:
    """The GraphSense-style actor id of a simulated entity name: lower-case letters and digits only
    ("Cobalt Exchange" -> ``cobaltexchange``)."""
    a = re.sub(r"[^a-z0-9]", "", name.lower())
    if not a:
        raise ValueError(f"no actor id can be made from {name!r}")
    return a


def write_actorpack(path: Path, actors: list[dict], *, title: str, creator: str, description: str,
                    lastmod: str) -> int:
    """Write a GraphSense ActorPack. `actors`: dicts with ``id``, ``label``, ``uri``, ``categories`` (concept
    ids) and optional ``context`` (a dict, written as a JSON string). Returns the number of actors."""
    ids = [a["id"] for a in actors]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"duplicate actor ids {dup}")
    lines = [f"title: {_q(title)}", f"creator: {_q(creator)}", f"description: {_q(description)}",
             f"lastmod: {lastmod}", "actors:" if actors else "actors: []"]
    for a in actors:
        bad = [c for c in a["categories"] if c not in CATEGORIES]
        if bad:
            raise ValueError(f"actor {a['id']}: unknown categories {bad}")
        lines += [f"- id: {a['id']}", f"  uri: {_q(a['uri'])}", f"  label: {_q(a['label'])}", f"  lastmod: {lastmod}",
                  "  categories: [" + ", ".join(a["categories"]) + "]"]
        if a.get("context"):
            lines.append(f"  context: {_q(json.dumps(a['context'], sort_keys=True))}")
    Path(path).write_text("\n".join(lines) + "\n")
    return len(actors)
