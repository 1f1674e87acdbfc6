"""Monitoring: watch stolen and sanctioned funds live, alert when they move (``chaintrace watch ...``).

Library entry points (the commands call these; see docs/monitoring.md):

* :func:`add_watchlist`, :func:`list_watchlists`, :func:`remove_watchlist` — what is watched;
* :func:`run_watch` — follow the nodes, raise alerts, deliver them from the persistent outbox;
* :class:`Webhook`, :class:`Smtp`, :class:`JsonLines` — delivery channels; :func:`verify_signature` for
  webhook receivers; :func:`outbox` — what was (or is still to be) delivered.

>>> from chaintrace import Workspace
>>> from chaintrace.monitor import add_watchlist, run_watch, Webhook
>>> ws = Workspace("chaintrace-data")                                                  # doctest: +SKIP
>>> add_watchlist(ws, "hack-1", "btc", from_trace="report.json")                        # doctest: +SKIP
>>> run_watch(ws, btc_rpc="http://u:p@127.0.0.1:8332", channels=[Webhook(URL, SECRET)])  # doctest: +SKIP
"""
from __future__ import annotations

from chaintrace.monitor.deliver import JsonLines, Smtp, Syslog, Webhook, outbox, verify_signature
from chaintrace.monitor.run import WatchStats, run_watch
from chaintrace.monitor.watchlist import add_watchlist, list_watchlists, remove_watchlist

__all__ = ["JsonLines", "Smtp", "Syslog", "WatchStats", "Webhook", "add_watchlist", "list_watchlists", "outbox",
           "remove_watchlist", "run_watch", "verify_signature"]
