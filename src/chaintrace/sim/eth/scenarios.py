"""Ethereum incident scenarios (data): a bridge drain laundered along the DPRK playbook, and its parts."""
from __future__ import annotations

SCENARIOS: dict[str, dict] = {
    "bridge-drain": {
        "description": "Bridge drained of ETH and tokens; tokens swapped to ETH on the DEX (a share of stablecoins "
                       "deposited at an exchange as is); fan-out to fresh addresses; the fixed-denomination mixer "
                       "with relayers; a hop through the bridge towards Bitcoin; peel-style cash-outs at exchanges; "
                       "dormancy then movement.",
        "fanout": (10, 25), "token_cashout": 0.2,
        "branches": {"mixer": 0.35, "bridge": 0.15, "exchange": 0.3, "dormant": 0.12, "hold": 0.08},
    },
    "fan-out": {
        "description": "Bridge drain, token swaps, then fan-out to many fresh addresses that cash out at exchanges; "
                       "no mixer, no bridge hop.",
        "fanout": (15, 30), "token_cashout": 0.2,
        "branches": {"exchange": 0.9, "hold": 0.1},
    },
    "mixer": {
        "description": "Bridge drain laundered mostly through the fixed-denomination mixer, whose withdrawals are "
                       "cashed out or bridged.",
        "fanout": (5, 10), "token_cashout": 0.0,
        "branches": {"mixer": 0.85, "hold": 0.15},
    },
    "otc": {
        "description": "Bridge drain whose ETH and tokens are mostly sold to an OTC desk no tag names (half of "
                       "the tokens directly, half of the fanned-out ETH); the desk co-mingles them with its "
                       "clients' trades and deposits at exchanges itself; the rest is peeled to exchanges.",
        "fanout": (8, 16), "token_cashout": 0.5, "otc_desk": True,
        "branches": {"otc": 0.5, "exchange": 0.4, "hold": 0.1},
    },
    "none": {"description": "No incident: the economy alone, for measuring false positives."},
}
