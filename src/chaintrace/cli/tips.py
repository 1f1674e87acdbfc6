"""`chaintrace tips ...` (the encrypted tip store; `chaintrace case ...` is in :mod:`chaintrace.cli.cases`)."""
from __future__ import annotations

import json
from pathlib import Path

import click
from rich.markup import escape

from chaintrace.cli import main
from chaintrace.cli._common import (
    console,
    data_option,
    format_option,
    print_json,
    table,
)
from chaintrace.errors import UserError

KEY = click.option("--key", "key", required=True, type=click.Path(dir_okay=False),
                   help="The analysts' private key file (from `chaintrace tips keygen`).")


@main.group("tips")
def tips_group():
    """The tip line: tips sealed to the analysts' public key, read only with the private key.

    Tips arrive through `POST /v1/tips` and the form at `/tip` of `chaintrace serve`, or `tips submit`.
    """


@tips_group.command("keygen")
@click.option("--key", "key", required=True, type=click.Path(dir_okay=False),
              help="Where to write the private key (its public key goes to KEY.pub).")
@click.option("--force", is_flag=True, help="Replace an existing key file.")
@click.option("--no-install", is_flag=True, help="Do not install the public key in this workspace's tip store.")
@format_option("text", "json")
@data_option
def keygen_cmd(ws, key, force, no_install, fmt):
    """Create the analysts' key pair and install its public key in the workspace's tip store.

    \b
    Example:
      chaintrace tips keygen --key ~/.chaintrace/analysts.key
    """
    from chaintrace.intake import TipStore, keygen

    r = keygen(key, force=force)
    if not no_install:
        TipStore(ws).set_public_key(r["public_key"])
    r["installed"] = not no_install
    if fmt == "json":
        return print_json(r)
    console.print(f"private key: {r['private_key']} (keep it off the server)\npublic key:  {r['public_key_file']}"
                  + ("\ninstalled in the workspace's tip store" if r["installed"] else ""))


@tips_group.command("install-key")
@click.argument("pubfile", type=click.Path(exists=True, dir_okay=False))
@data_option
def install_key_cmd(ws, pubfile):
    """Install an analysts' public key (KEY.pub) on the server's workspace: new tips are sealed to it.

    \b
    Example:
      chaintrace tips install-key analysts.key.pub
    """
    from chaintrace.intake import TipStore

    TipStore(ws).set_public_key(Path(pubfile).read_text())
    console.print(f"installed {pubfile}")


@tips_group.command("submit")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@format_option("text", "json")
@data_option
def submit_cmd(ws, file, fmt):
    """Submit a tip from a JSON file (the body of POST /v1/tips): screened, sealed and stored.

    \b
    Example:
      chaintrace tips submit tip.json
    """
    from chaintrace.intake import TipStore, screen_tip

    try:
        body = json.loads(Path(file).read_text("utf-8"))
    except ValueError as e:
        raise UserError(f"{file}: malformed JSON ({e})") from None
    r = TipStore(ws).submit(body, screen=lambda t: screen_tip(ws, t))
    if fmt == "json":
        return print_json(r)
    console.print(f"tip {r['id']} stored (score {r['score']}); receipt code: {r['receipt']}")


@tips_group.command("list")
@click.option("--key", "key", default=None, type=click.Path(dir_okay=False),
              help="Private key: adds what the tips say (counts, start of the narrative).")
@format_option("text", "json")
@data_option
def list_cmd(ws, key, fmt):
    """List tips by triage score (metadata only without --key).

    \b
    Example:
      chaintrace tips list --key analysts.key
    """
    from chaintrace.intake import TipStore

    rows = TipStore(ws).list(key)
    if fmt == "json":
        return print_json({"tips": rows})
    cols = ["id", "received", "score", "status", "case", "follow-ups"] + (["addresses", "txids", "narrative"] if key else [])
    console.print(table(f"{len(rows)} tips", cols, [
        [r["id"], r["received_day"], r["score"], r["status"], r["case_id"], r["followups"]]
        + ([r["addresses"], r["txids"], escape(r["narrative"])] if key else []) for r in rows], {"score": "right"}))


@tips_group.command("show")
@click.argument("tip_id")
@KEY
@format_option("text", "json")
@data_option
def show_cmd(ws, tip_id, key, fmt):
    """Decrypt and show one tip with its screening and follow-ups.

    \b
    Example:
      chaintrace tips show tip-0123456789ab --key analysts.key
    """
    from chaintrace.intake import TipStore

    t = TipStore(ws).get(tip_id, key)
    for x in [t["tip"]] + [f["tip"] for f in t["followups"]]:
        for a in x["attachments"]:
            a.pop("data", None)
    if fmt == "json":
        return print_json(t)
    tip = t["tip"]
    console.print(f"{t['id']}  received {t['received_day']}  score {t['score']}  {t['status']}"
                  + (f"  case {t['case_id']}" if t["case_id"] else ""), markup=False)
    for x in tip["addresses"]:
        console.print(f"address  {x['chain']}  {x['address']}", markup=False)
    for x in tip["txids"]:
        console.print(f"txid     {x['chain']}  {x['txid']}", markup=False)
    for x in tip["amounts"]:
        console.print(f"amount   {x['value']} {x['asset']}", markup=False)
    for k in ("time", "contact", "narrative"):
        if tip.get(k):
            console.print(f"{k}: {tip[k]}", markup=False)
    for a in tip["attachments"]:
        console.print(f"attachment {a['name']} ({a['content_type']}, {a['size']} bytes)", markup=False)
    console.print("screening: " + "; ".join(t["screening"].get("reasons", [])), markup=False)
    for f in t["followups"]:
        console.print(f"follow-up #{f['seq']} ({f['received_day']}): {f['tip'].get('narrative') or ''}", markup=False)


@tips_group.command("decrypt")
@KEY
@click.option("--out", "out", default=None, type=click.Path(file_okay=False),
              help="Also write each tip to OUT/<tip id>.json and its attachments to OUT/<tip id>/.")
@format_option("json", default="json")
@data_option
def decrypt_cmd(ws, key, out, fmt):
    """Decrypt every tip to JSON (attachments to --out).

    \b
    Example:
      chaintrace tips decrypt --key analysts.key --out tips-export > tips.json
    """
    from chaintrace.intake import TipStore, attachment_bytes

    store = TipStore(ws)
    tips = [store.get(tid, key) for tid in store.ids()]
    for t in tips:
        for x in [t["tip"]] + [f["tip"] for f in t["followups"]]:
            for a in x["attachments"]:
                data = attachment_bytes(a)
                a.pop("data")
                if out:
                    d = Path(out) / t["id"]
                    d.mkdir(parents=True, exist_ok=True)
                    (d / a["name"]).write_bytes(data)
                    a["file"] = str(d / a["name"])
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        for t in tips:
            (Path(out) / f"{t['id']}.json").write_text(json.dumps(t, ensure_ascii=False, indent=1), "utf-8")
    print_json({"tips": tips})


@tips_group.command("triage")
@click.argument("tip_id")
@KEY
@click.option("--title", default=None, help="Case title (default: the tip id and day).")
@format_option("text", "json")
@data_option
def triage_cmd(ws, tip_id, key, title, fmt):
    """Open a case from a tip (its addresses, txids and screening), marking the tip triaged.

    \b
    Example:
      chaintrace tips triage tip-0123456789ab --key analysts.key
    """
    from chaintrace.intake import triage

    c = triage(ws, tip_id, key, title=title)
    if fmt == "json":
        return print_json(c)
    console.print(f"case {c['id']} opened from {tip_id} ({len(c['addresses'])} addresses)")
