"""GraphSense TagPacks and ActorPacks (YAML): parse with line numbers, write back.

Schema: graphsense-lib ``tagpack/conf/tagpack_schema.yaml``. A TagPack is a header (title, creator, tags,
description, and any tag field as a default every tag inherits) and a list of tags; a tag has label,
source, currency (+ network), confidence, address, and optionally actor, category, abuse, concepts,
context (a JSON string), lastmod, is_cluster_definer, tag_type.

Each tag is checked on its own: a tag that cannot be taken (no address, an address that fails its chain's
checksum, a chain that cannot be told) is *rejected* with its file, line and reason, the rest import. A file
that is not YAML, or not a TagPack at all, is refused whole (:class:`~chaintrace.errors.UserError` with the
line).
"""
from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

import yaml

from chaintrace.errors import UserError
from chaintrace.intel import addresses as addr
from chaintrace.intel.files import read_bytes
from chaintrace.intel.model import CONFIDENCE_LEVELS, LEVEL_IDS, Actor, Parsed, Reject, confidence_id_for, iso_date
from chaintrace.intel.yamlblock import read_flat
from chaintrace.model.tags import Tag, primary_category

TAG_FIELDS = ("label", "source", "currency", "network", "confidence", "address", "tx_hash", "actor", "category",
              "abuse", "concepts", "tag_type", "context", "lastmod", "is_cluster_definer", "is_public")
HEADER_FIELDS = ("title", "creator", "description", "owner", "tags", "is_public")

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(path: Path, list_key: str) -> tuple[object, list[int]]:
    """Parse a YAML file into (data, 1-based line of each item of the top-level list `list_key`). Files in
    the flat TagPack layout take the fast reader (:mod:`chaintrace.intel.yamlblock`), others PyYAML (libyaml
    when installed). Syntax errors name the line."""
    stream = read_bytes(path)
    try:
        flat = read_flat(stream.decode("utf-8"), list_key)
    except UnicodeDecodeError:
        flat = None
    if flat is not None:
        return flat
    loader = _Loader(stream)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        raise UserError(f"{path}: {where}: malformed YAML: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise UserError(f"{path}: malformed YAML: {e}") from None
    except (ValueError, TypeError) as e:  # e.g. an impossible date the constructor cannot build
        raise UserError(f"{path}: invalid YAML value: {e}") from None
    finally:
        loader.dispose()
    return data, _item_lines(node, list_key)


def _item_lines(root: yaml.Node | None, key: str) -> list[int]:
    """1-based line of each item of the top-level sequence `key`."""
    if not isinstance(root, yaml.MappingNode):
        return []
    for k, v in root.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key and isinstance(v, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in v.value]
    return []


def _text(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, (_dt.date, _dt.datetime)):
        return v.isoformat()
    s = str(v).strip()
    return s or None


def _context(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True, default=str)
    return str(v)


def parse_tagpack(path: str | Path, *, tlp: str | None = None, default_chain: str | None = None) -> Parsed:
    """Read one TagPack file. Tags inherit header fields; each bad tag becomes a :class:`Reject`."""
    path = Path(path)
    data, lines = load_yaml(path, "tags")
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a TagPack (expected a mapping with title, creator and tags)")
    if "tags" not in data:
        if "actors" in data:
            raise UserError(f"{path}: this is an ActorPack; import it with `intel import actorpack`")
        raise UserError(f"{path}: not a TagPack (no 'tags' list)")
    tags = data.get("tags") or []
    if not isinstance(tags, list):
        raise UserError(f"{path}: 'tags' must be a list")
    header = {k: v for k, v in data.items() if k in TAG_FIELDS}
    out = Parsed(kind="tagpack", path=str(path))
    out.meta = {"title": _text(data.get("title")), "creator": _text(data.get("creator")),
                "licence": _text(data.get("license") or data.get("licence")),
                "description": _text(data.get("description"))}
    header_line = 1
    if header.get("lastmod") is not None:
        iso_date(header["lastmod"], f"{path}: lastmod")
    seen = set()
    for i, raw in enumerate(tags):
        line = lines[i] if i < len(lines) else header_line
        if not isinstance(raw, dict):
            out.rejects.append(Reject(str(path), line, None, None, "tag is not a mapping"))
            continue
        t = {**header, **{k: v for k, v in raw.items() if v is not None}}
        unknown = [k for k in raw if k not in TAG_FIELDS]
        raw_address = t.get("address")
        if raw_address is not None and not isinstance(raw_address, str):
            why = ("address is a number, not a string (YAML reads an unquoted 0x... as an integer: quote it)"
                   if isinstance(raw_address, int) else f"address is a {type(raw_address).__name__}, not a string")
            shown = (f"0x{raw_address:040x}" if isinstance(raw_address, int) and 0 <= raw_address < 1 << 160
                     else repr(raw_address)[:80])
            out.rejects.append(Reject(str(path), line, shown, None, why))
            continue
        address = _text(raw_address)
        if t.get("tx_hash") is not None and address is None:
            out.rejects.append(Reject(str(path), line, _text(t.get("tx_hash")), None,
                                      "transaction tag (tx_hash): only address tags are supported"))
            continue
        if address is None:
            out.rejects.append(Reject(str(path), line, None, None, "tag has no address"))
            continue
        currency = _text(t.get("currency"))
        network = _text(t.get("network")) or currency
        if network is not None and not addr.known_chain(network):
            what = "network" if t.get("network") is not None else "currency"
            out.rejects.append(Reject(str(path), line, address, None,
                                      f"unknown {what} {network!r} (not a chain, network or token ticker "
                                      f"chaintrace knows; the tag is not imported under a guessed chain)"))
            continue
        chain = addr.chain_of(network, address) or default_chain
        if chain is None:
            why = (f"currency {currency!r} names no chain and the address form does not tell which (add network:)"
                   if currency else "no currency/network given and the address form does not tell the chain")
            out.rejects.append(Reject(str(path), line, address, None, why))
            continue
        why = addr.check(chain, address)
        if why:
            out.rejects.append(Reject(str(path), line, address, chain, why))
            continue
        label = _text(t.get("label"))
        if label is None:
            out.rejects.append(Reject(str(path), line, address, chain, "tag has no label (mandatory)"))
            continue
        conf_id = _text(t.get("confidence"))
        if conf_id is not None and conf_id not in CONFIDENCE_LEVELS:
            if conf_id.isdigit() and int(conf_id) in LEVEL_IDS:
                conf_id = LEVEL_IDS[int(conf_id)]
            else:
                out.rejects.append(Reject(str(path), line, address, chain,
                                          f"undefined confidence {conf_id!r} (expected one of "
                                          f"{', '.join(sorted(CONFIDENCE_LEVELS))}, or a level "
                                          f"{', '.join(map(str, sorted(LEVEL_IDS)))})"))
                continue
        level = CONFIDENCE_LEVELS.get(conf_id) if conf_id else None
        try:
            lastmod = iso_date(t.get("lastmod"), f"{path}:{line}: lastmod")
        except UserError as e:
            out.rejects.append(Reject(str(path), line, address, chain, str(e).split(": ", 2)[-1]))
            continue
        category = _text(t.get("category"))
        abuse = _text(t.get("abuse"))
        concepts = t.get("concepts")
        extra = {"line": line, "currency": currency, "network": _text(t.get("network"))}
        if concepts:
            extra["concepts"] = [str(c) for c in (concepts if isinstance(concepts, list) else [concepts])]
        if t.get("tag_type") is not None:
            extra["tag_type"] = _text(t.get("tag_type"))
        if t.get("is_cluster_definer") is not None:
            extra["is_cluster_definer"] = bool(t.get("is_cluster_definer"))
        if category is not None:
            extra["entity_category"] = category
        if unknown:
            extra["unknown_fields"] = unknown
        ctx = _context(t.get("context"))
        if ctx is not None:
            extra["context"] = ctx
        tag = Tag(chain=chain, address=address.lower() if addr.is_evm(chain) else address, label=label,
                  category=primary_category(category, abuse), actor=_text(t.get("actor")),
                  source=_text(t.get("source")), confidence=level, tlp=tlp,
                  is_public=tlp is None or tlp.lower() in ("clear", "white", "tlp:clear", "tlp:white"),
                  lastmod=lastmod, abuse=abuse, extra={**extra, "confidence_id": conf_id,
                                                        "address_as_written": address})
        ident = (tag.chain, addr.key(chain, address), tag.label, category, abuse, tag.actor, tag.source, currency)
        if ident in seen:
            out.duplicates += 1
            continue
        seen.add(ident)
        out.tags.append(tag)
    return out


def parse_actorpack(path: str | Path) -> Parsed:
    """Read a GraphSense ActorPack: actors with id, label, uri, categories, jurisdictions, aliases, context."""
    path = Path(path)
    data, lines = load_yaml(path, "actors")
    if not isinstance(data, dict) or not isinstance(data.get("actors"), list):
        if isinstance(data, dict) and "tags" in data:
            raise UserError(f"{path}: this is a TagPack; import it with `intel import tagpack`")
        raise UserError(f"{path}: not an ActorPack (expected a mapping with an 'actors' list)")
    out = Parsed(kind="actorpack", path=str(path))
    out.meta = {"title": _text(data.get("title")), "creator": _text(data.get("creator")),
                "licence": _text(data.get("license") or data.get("licence")),
                "description": _text(data.get("description"))}
    head_lastmod = iso_date(data.get("lastmod"), f"{path}: lastmod")
    seen = set()
    for i, a in enumerate(data["actors"]):
        line = lines[i] if i < len(lines) else None
        if not isinstance(a, dict) or not _text(a.get("id")):
            out.rejects.append(Reject(str(path), line, None, None, "actor without an id"))
            continue
        aid = _text(a["id"])
        if aid in seen:
            out.duplicates += 1
            continue
        seen.add(aid)
        ctx = a.get("context") or {}
        if isinstance(ctx, str):
            try:
                ctx = json.loads(ctx)
            except ValueError:
                ctx = {"notes": [ctx]}
        refs = []
        if isinstance(ctx, dict):
            for k in ("uris", "refs"):
                v = ctx.get(k) or []
                refs += [str(x) for x in (v if isinstance(v, list) else [v])]
        juris = a.get("jurisdictions") or []
        out.actors.append(Actor(
            id=aid, name=_text(a.get("label")) or aid,
            aliases=[str(x) for x in (a.get("aliases") or [])],
            country=str(juris[0]).upper() if isinstance(juris, list) and len(juris) == 1 else None,
            categories=[str(c) for c in (a.get("categories") or [])], uri=_text(a.get("uri")),
            references=refs, lastmod=iso_date(a.get("lastmod"), f"{path}:{line}: lastmod") or head_lastmod,
            line=line))
    return out


# ---------------------------------------------------------------------------------------------- writing


def _q(v) -> str:
    return json.dumps(v, ensure_ascii=False)  # JSON strings are valid YAML scalars


def write_tagpack(tags, path: str | Path, *, title: str, creator: str, description: str | None = None) -> int:
    """Write tags as a TagPack YAML file (every field explicit per tag); returns the number of tags."""
    path = Path(path)
    lines = [f"title: {_q(title)}", f"creator: {_q(creator)}"]
    if description:
        lines.append(f"description: {_q(description)}")
    lines.append("tags:")
    n = 0
    for t in tags:
        e = t.extra or {}
        currency = e.get("currency") or t.chain.upper()
        lines.append(f"- address: {_q(e.get('address_as_written') or t.address)}")
        lines.append(f"  label: {_q(t.label)}")
        lines.append(f"  currency: {_q(currency)}")
        network = e.get("network")
        if network:
            lines.append(f"  network: {_q(network)}")
        elif currency.lower() != t.chain:
            lines.append(f"  network: {_q(t.chain.upper())}")
        if t.source:
            lines.append(f"  source: {_q(t.source)}")
        conf = e.get("confidence_id") or confidence_id_for(t.confidence)
        if conf:
            lines.append(f"  confidence: {_q(conf)}")
        cat = e.get("entity_category", t.category if t.category != t.abuse else None)
        if cat:
            lines.append(f"  category: {_q(cat)}")
        if t.abuse:
            lines.append(f"  abuse: {_q(t.abuse)}")
        if t.actor:
            lines.append(f"  actor: {_q(t.actor)}")
        if t.lastmod:
            lines.append(f"  lastmod: {t.lastmod}")
        if e.get("concepts"):
            lines.append(f"  concepts: {_q(list(e['concepts']))}")
        if e.get("tag_type"):
            lines.append(f"  tag_type: {_q(e['tag_type'])}")
        if e.get("is_cluster_definer") is not None:
            lines.append(f"  is_cluster_definer: {'true' if e['is_cluster_definer'] else 'false'}")
        if e.get("context"):
            lines.append(f"  context: {_q(e['context'])}")
        n += 1
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)
    return n
