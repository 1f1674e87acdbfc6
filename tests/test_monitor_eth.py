"""Monitoring Ethereum against a real node (anvil on 127.0.0.1): moves of a watched account are alerted with
amount, from, to and transaction hash, the receivers are watched for what they got (tainted first out), a
deposit to a tagged exchange comes with a freeze request, and a reorg retracts the alerts of dropped blocks."""
from __future__ import annotations

import json

import pytest

from chaintrace import intel
from chaintrace.chains.eth import ingest_eth_rpc
from chaintrace.monitor import JsonLines, add_watchlist, list_watchlists, run_watch
from chaintrace.store.workspace import Workspace
from tests.eth.anvil import INSTALL, Anvil, find_anvil

pytestmark = pytest.mark.skipif(find_anvil() is None, reason=f"anvil not installed (run `{INSTALL}`)")
E = 10**18


def test_eth_moves_service_and_reorg(tmp_path):
    with Anvil() as n:
        a = [x.lower() for x in n.accounts]
        n.send(a[1], a[2], 5 * E)
        ws = Workspace(tmp_path / "data")
        ingest_eth_rpc(ws, n.url)
        tags = tmp_path / "ex.yaml"
        tags.write_text(f"title: t\ncreator: tests\ncurrency: ETH\ntags:\n  - address: '{a[5]}'\n"
                        f"    label: Exchange E\n    category: exchange\n")
        intel.import_paths(ws, "tagpack", [tags])
        add_watchlist(ws, "thief", "eth", addresses=[a[2]], case_id="C-1")
        out = tmp_path / "alerts.jsonl"
        chans = [JsonLines(str(out))]

        def alerts():
            return [json.loads(x) for x in out.read_text().splitlines()] if out.exists() else []

        r = n.send(a[2], a[3], 2 * E)
        run_watch(ws, eth_rpc=n.url, channels=chans, once=True)
        m = alerts()[0]
        assert m["kind"] == "moved" and m["txid"] == r["transactionHash"] and m["amount"] == str(2 * E)
        assert m["from"][0]["address"] == a[2] and m["to"][0]["address"] == a[3] and m["to"][0]["followed"] is True
        assert m["height"] == int(r["blockNumber"], 16)

        r2 = n.send(a[2], a[5], E)
        run_watch(ws, eth_rpc=n.url, channels=chans, once=True)
        fr = [x for x in alerts() if x["kind"] == "service"][0]["freeze_request"]
        assert fr["exchange"] == "Exchange E" and fr["deposit_address"] == a[5] and fr["amount"] == str(E)
        assert fr["txid"] == r2["transactionHash"] and fr["case_id"] == "C-1"

        snap = n.rpc("evm_snapshot")
        # the receiver moves more than it got: only the traced 2 ETH are followed (tainted first out)
        r3 = n.send(a[3], a[4], 3 * E)
        run_watch(ws, eth_rpc=n.url, channels=chans, once=True)
        m3 = [x for x in alerts() if x.get("txid") == r3["transactionHash"]][0]
        assert int(m3["amount"]) + int(m3["fee"]["ETH"]) == 2 * E and m3["to"][0]["hops"] == 2
        assert m3["to"][0]["amount"] == m3["amount"]
        w = list_watchlists(ws)[0]
        assert w["derived"] == 2

        assert n.rpc("evm_revert", snap)
        n.send(a[6], a[7], E)
        n.send(a[6], a[7], E)
        run_watch(ws, eth_rpc=n.url, channels=chans, once=True)
        ret = [x for x in alerts() if x["kind"] == "retracted"]
        assert [x["retracts"] for x in ret] == [m3["dedup_key"]]
        w = list_watchlists(ws)[0]
        assert w["derived"] == 1 and w["retracted"] == 1
        assert len({x["dedup_key"] for x in alerts()}) == len(alerts())
