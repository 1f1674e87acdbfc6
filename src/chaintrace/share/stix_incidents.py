"""STIX ``incident`` objects -> registry incidents (and their seed addresses and transactions).

An incident keeps what chaintrace's incident extension states (id, dates, kind, chains, exact amounts,
attribution), its victim (the ``identity`` it is ``related-to`` as victim, or that it ``targets``), its actor
(``attributed-to``), its sources (external references) and its provenance: the producer, the TLP level and the
confidence. The STIX ids of the incident, its victim and its producer travel in the row's context, so that
exporting it again gives the same objects with the same markings (STIX -> registry -> STIX round trip).
An incident without our extension (OpenCTI, another tool) gets the id ``stix-<uuid of its STIX id>``,
marked as synthesised in its notes.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

from chaintrace.intel.model import Incident, Reject, Seed
from chaintrace.share import source, stix

_VICTIM_RELS = ("related-to", "targets")


def _day(value) -> str | None:
    return str(value)[:10] if value else None


def _amount(value, where: str, rejects: list[Reject]) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        rejects.append(Reject(where, None, None, None, f"amount_usd {value!r} is not a decimal number"))
        return None


def parse_incidents(objects: list[dict], *, where: str, bundle_id: str | None, markings: dict[str, str],
                    names: dict, actor_of: dict[str, str], known_seeds: set[tuple],
                    rejects: list[Reject]) -> tuple[list[Incident], list[Seed]]:
    """The incidents of a bundle and the seeds linked to them (seeds the registry already holds are skipped)."""
    from chaintrace.share.stix_import import WALLET_TYPES, tlp_of

    by_id = {o.get("id"): o for o in objects if isinstance(o, dict)}
    rels = [o for o in objects if isinstance(o, dict) and o.get("type") == "relationship"]
    incidents: list[Incident] = []
    inc_of: dict[str, Incident] = {}
    for o in objects:
        if not isinstance(o, dict) or o.get("type") != "incident" or not o.get("id"):
            continue
        ext = (o.get("extensions") or {}).get(stix.INCIDENT_EXTENSION) or {}
        notes = ext.get("notes")
        iid = ext.get("incident_id")
        if not iid:
            iid = "stix-" + o["id"].split("--", 1)[-1]
            notes = "; ".join(x for x in (notes, "id synthesised by chaintrace from the STIX id") if x)
        victim_ref, victim, actor = None, None, None
        for r in rels:
            if r.get("source_ref") != o["id"]:
                continue
            tgt = by_id.get(r.get("target_ref")) or {}
            if r.get("relationship_type") in _VICTIM_RELS and tgt.get("type") == "identity" and victim is None \
                    and (r.get("relationship_type") == "targets" or r.get("description") == "victim"):
                victim_ref, victim = tgt["id"], tgt.get("name")
            elif r.get("relationship_type") == "attributed-to" and r.get("target_ref") in actor_of:
                actor = actor_of[r["target_ref"]]
        prod = o.get("created_by_ref")
        ctx = {"chaintrace_share": {k: v for k, v in (
            ("incident", o["id"]), ("victim", victim_ref), ("producer", prod), ("producer_name", names.get(prod)),
            ("bundle", bundle_id), ("markings", o.get("object_marking_refs"))) if v}}
        conf = o.get("confidence", o.get("x_opencti_score"))
        inc = Incident(
            id=str(iid), date=_day(ext.get("date") or o.get("first_seen") or o.get("created")) or "",
            victim=victim or "unknown (not stated in the bundle)", date_end=_day(ext.get("date_end")),
            title=o.get("name"), kind=ext.get("kind"), chains=list(ext.get("chains") or []),
            asset=ext.get("asset"), amount_asset=ext.get("amount_asset"),
            amount_usd=_amount(ext.get("amount_usd"), f"{where}: {o['id']}", rejects), actor=actor,
            actor_detail=ext.get("actor_detail"), attribution=ext.get("attribution"),
            attributed_by=ext.get("attributed_by"),
            sources=[r["url"] for r in o.get("external_references") or () if r.get("url")], notes=notes,
            tlp=tlp_of(o, markings), confidence=int(conf) if isinstance(conf, (int, float)) else None,
            producer=names.get(prod) or prod, context=source.context_json(ctx))
        if not inc.date:
            rejects.append(Reject(where, None, None, None, f"{o['id']}: incident without a date"))
            continue
        incidents.append(inc)
        inc_of[o["id"]] = inc
    return incidents, _seeds(rels, by_id, inc_of, known_seeds, WALLET_TYPES)


def _seeds(rels: list[dict], by_id: dict, inc_of: dict, known: set[tuple],
           wallet_types: tuple[str, ...]) -> list[Seed]:
    """Attacker addresses (indicators ``related-to`` the incident), victim addresses (wallets related-to it as
    victim address) and transactions related-to it."""
    based_on: dict[str, list[str]] = {}
    for r in rels:
        if r.get("relationship_type") == "based-on":
            based_on.setdefault(str(r.get("source_ref")), []).append(str(r.get("target_ref")))
    out: list[Seed] = []
    for r in rels:
        inc = inc_of.get(r.get("target_ref"))
        src = by_id.get(r.get("source_ref")) or {}
        if inc is None or r.get("relationship_type") != "related-to":
            continue
        side, role, wallets = "attacker", None, []
        if src.get("type") == "indicator":
            wallets = [by_id[w] for w in based_on.get(src["id"], ()) if by_id.get(w, {}).get("type") in wallet_types]
            name = str(src.get("name") or "")
            role = name.split(": ", 1)[1] if ": " in name else None
        elif src.get("type") in wallet_types:
            wallets, side, role = [src], "victim" if r.get("description") == "victim address" else "attacker", None
        elif src.get("type") == "cryptocurrency-transaction" and src.get("value"):
            chain = source.chain_of_symbol(src.get("symbol"))
            if chain and (inc.id, chain, src["value"]) not in known:
                known.add((inc.id, chain, src["value"]))
                out.append(Seed(incident=inc.id, chain=chain, txid=src["value"], role=r.get("description"),
                                side="attacker", source=inc.producer))
            continue
        for w in wallets:
            value = w.get("value") or w.get("address")
            chain = ((w.get("extensions") or {}).get(stix.WALLET_EXTENSION) or {}).get("chain") \
                or (source.chain_of(None, value) if value else None)
            if not value or not chain or source.address_error(chain, value):
                continue  # the wallet itself is imported (or rejected, with the reason) as a tag
            key = (inc.id, chain, source.addr_key(chain, value))
            if key in known:
                continue
            known.add(key)
            out.append(Seed(incident=inc.id, chain=chain, address=value, role=role, side=side, source=inc.producer))
    return out
