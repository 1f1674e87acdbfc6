"""Sharing intelligence between institutions: STIX 2.1 bundles, MISP events and feeds, TLP 2.0 rules,
signed bundles, and TAXII 2.1 (server router in :mod:`chaintrace.api.taxii`, client in
:mod:`chaintrace.share.taxii_client`).

>>> from chaintrace import share
>>> share.export(ws, "stix", "registry.json", tlp="green", sign="me.key")["objects"]     # doctest: +SKIP
>>> share.import_file(ws, "peer-bundle.json")["tags"]                                    # doctest: +SKIP
>>> share.verify("registry.json", key="peer.key.pub")["valid"]                          # doctest: +SKIP
"""
from __future__ import annotations

from chaintrace.share.api import FORMATS, export, import_bytes, import_file, keygen, verify
from chaintrace.share.export import build_bundle

__all__ = ["FORMATS", "build_bundle", "export", "import_bytes", "import_file", "keygen", "verify"]
