"""Intake of tips: a public tip line whose submissions are sealed to the analysts' public key at once.

>>> from chaintrace.intake import TipStore, keygen, screen_tip                      # doctest: +SKIP
>>> keygen("analysts.key")                         # writes analysts.key (0600) and analysts.key.pub
>>> store = TipStore(ws); store.set_public_key(open("analysts.key.pub").read())
>>> store.submit({"addresses": ["0x098B716B8Aaf21512996dC57EB0615e2383E2f96"], "narrative": "..."},
...              screen=lambda t: screen_tip(ws, t))          # -> {"id", "receipt", "score"}
>>> store.get(tip_id, "analysts.key")                         # only with the private key

See docs/intake.md (storage, what is in clear, abuse limiting, triage score).
"""
from __future__ import annotations

from chaintrace.intake.crypto import keygen
from chaintrace.intake.limits import TipLimiter
from chaintrace.intake.store import TipStore, attachment_bytes, receipt_hash
from chaintrace.intake.triage import screen_tip, triage
from chaintrace.intake.validate import MAX_BODY, TipError, validate_tip

__all__ = [
           "MAX_BODY",
           "TipError",
           "TipLimiter",
           "TipStore",
           "attachment_bytes",
           "keygen",
           "receipt_hash",
           "screen_tip",
           "triage",
           "validate_tip",
]
