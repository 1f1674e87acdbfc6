"""Bitcoin output script type codes, shared by the parser (``chaintrace.chains.btc.script``), the store's
columns, the graph arrays, the CoinJoin detectors and the tracer.

``SCRIPT_TYPES[code]`` is the name stored in ``btc.outputs.type``; the integer codes are what the arrays hold.
"""
from __future__ import annotations

SCRIPT_TYPES = ("nonstandard", "p2pkh", "p2sh", "p2wpkh", "p2wsh", "p2tr", "witness_unknown", "p2pk",
                "multisig", "nulldata")
NONSTANDARD, P2PKH, P2SH, P2WPKH, P2WSH, P2TR, WITNESS_UNKNOWN, P2PK, MULTISIG, NULLDATA = range(10)
