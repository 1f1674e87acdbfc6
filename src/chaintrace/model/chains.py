"""Chain names: the chains chaintrace stores and analyses, and the aliases users may type for them.

:func:`resolve_chain` is the one place a user-given ``--chain`` becomes a canonical name; an unknown name
is a :class:`~chaintrace.errors.UserError` (exit 2) that lists the valid names, never a silent empty answer.
"""
from __future__ import annotations

from typing import Iterable

from chaintrace.errors import UserError

#: Chains with a store, tracer and simulator, in the order they are listed to users.
CHAINS: tuple[str, ...] = ("btc", "eth")

#: Other spellings accepted for them (case-insensitive; surrounding whitespace ignored).
ALIASES: dict[str, str] = {
    "bitcoin": "btc", "xbt": "btc",
    "ethereum": "eth", "ether": "eth",
}


def resolve_chain(name: str | None, choices: Iterable[str] = CHAINS) -> str:
    """The canonical name (``'btc'``, ``'eth'``) of the chain `name` or one of its aliases.

    `choices` narrows the chains accepted (e.g. a command that only works on ``btc``). Raises
    :class:`UserError` naming the valid chains and aliases when `name` is none of them.
    """
    allowed = tuple(choices)
    key = str(name).strip().lower() if name is not None else ""
    key = ALIASES.get(key, key)
    if key in allowed:
        return key
    aliases = ", ".join(f"{a} ({c})" for a, c in ALIASES.items() if c in allowed)
    raise UserError(f"unknown chain {name!r}: valid chains are {', '.join(allowed)}"
                    + (f" (aliases: {aliases})" if aliases else ""))
