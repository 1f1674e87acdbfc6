"""`chaintrace share ...`: exchange intelligence (STIX 2.1, MISP, TAXII 2.1), signed and TLP-enforced."""
from __future__ import annotations

import json
import sys

import click

from chaintrace import share
from chaintrace.cli import main
from chaintrace.cli._common import console, data_option, err_console, format_option, jsonable, print_json, table
from chaintrace.errors import ChaintraceError, UserError

TLP_LEVELS = ("clear", "green", "amber", "amber+strict", "red")  # TLP 2.0, as the --tlp option names them


@main.group("share")
def share_group():
    """Share intelligence with other institutions: STIX 2.1 bundles, MISP events and feeds, TAXII 2.1.

    Exports carry TLP 2.0 markings and deterministic ids; imports keep who produced each address, its TLP
    and confidence. See docs/sharing.md.
    """


@share_group.command("export")
@click.option("--format", "fmt_out", type=click.Choice(share.FORMATS), default="stix", show_default=True,
              help="File format: STIX 2.1 bundle, MISP event JSON, MISP feed directory, GraphSense TagPack.")
@click.option("--as", "fmt_as", type=click.Choice(share.FORMATS), default=None, hidden=True,
              help="Deprecated alias of --format.")
@click.option("--tlp", default=None, type=click.Choice(TLP_LEVELS, case_sensitive=False),
              help="Lowest TLP marking of every object (clear, green, amber, amber+strict, red).")
@click.option("--incident", default=None, help="Only this incident (id from `chaintrace intel timeline`).")
@click.option("--trace", "trace_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A trace report JSON (`chaintrace trace ... --format json`): its cash-outs as a STIX report.")
@click.option("--screening", "screening", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A screening result (`chaintrace screen address ... --format json`): its hits as STIX sightings.")
@click.option("--out", "out", type=click.Path(), default=None, help="Output file (feed: directory); default stdout.")
@click.option("--producer", default="chaintrace", show_default=True, help="Name of the producing organisation.")
@click.option("--sign", "sign", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Sign with this ed25519 private key (`chaintrace share keygen`): writes OUT.sig.")
@click.option("--include-restricted", is_flag=True, help="Also intel marked not public (never TLP:RED).")
@click.option("--summary", "summary", type=click.Choice(["text", "json", "none"]), default="text",
              show_default=True, help="What was written, on stderr: for people (text), programs (json) or nothing.")
@click.option("--quiet", "-q", is_flag=True, help="No summary (same as --summary none).")
@data_option
def export_cmd(ws, fmt_out, fmt_as, tlp, incident, trace_file, screening, out, producer, sign, include_restricted,
               summary, quiet):
    """Export the shareable registry (or one incident, or trace findings) for another institution.

    With no filter: sanctions addresses, the DPRK incident catalogue with its actors (Lazarus Group as
    MITRE ATT&CK G0032) and imported intel that may be redistributed. Same facts, same ids. `--format`
    is the file format; the bundle goes to --out (or stdout), the summary of what was written to stderr.

    \b
    Example:
      chaintrace share export --tlp green --out registry.stix.json
      chaintrace share export --format misp --incident ronin-2022 --out ronin.misp.json
      chaintrace share export --out signed.json --sign me.key && chaintrace share verify signed.json
    """
    if fmt_as is not None:
        if fmt_out != "stix" and fmt_out != fmt_as:
            raise UserError(f"--as {fmt_as} contradicts --format {fmt_out} (--as is a deprecated alias of --format)")
        fmt_out = fmt_as
        err_console.print("[yellow]--as is deprecated: use --format[/]", highlight=False)
    r = share.export(ws, fmt_out, out, tlp=tlp.lower() if tlp else None, incident=incident, trace=trace_file,
                     producer=producer, sign=sign, include_restricted=include_restricted, screening=screening)
    if "data" in r:
        sys.stdout.buffer.write(r.pop("data") + b"\n")
        sys.stdout.flush()
    if quiet or summary == "none":
        return
    if summary == "json":
        click.echo(json.dumps(jsonable(r), indent=2, ensure_ascii=False), err=True)
        return
    what = ", ".join(f"{n:,} {t}" for t, n in sorted((r.get("by_type") or {}).items(), key=lambda x: -x[1]))
    where = r.get("path") or "stdout"
    err_console.print(f"wrote {where} ({r['format']}): {what or _brief(r)}", highlight=False)
    for why, n in (r.get("held_back") or {}).items():
        what = "incident(s)" if "incident" in why else "imported tag(s)"
        err_console.print(f"[yellow]held back:[/] {n:,} {what}: {why}", highlight=False)
    if r.get("signature"):
        err_console.print(f"signed: {r['signature']['file']} (key {r['signature']['key_id']})", highlight=False)


def _brief(r: dict) -> str:
    return ", ".join(f"{v:,} {k}" for k, v in r.items() if isinstance(v, int) and not isinstance(v, bool)) or "done"


@share_group.command("import")
@click.argument("path", type=click.Path(exists=True))
@click.option("--as", "fmt_in", type=click.Choice(["stix", "misp", "misp-feed"]), default=None,
              help="Input format (default: detected).")
@click.option("--verify-key", type=click.Path(), default=None,
              help="Only import when PATH.sig is a valid signature by this public key (.pub file or hex).")
@format_option("text", "json")
@data_option
def import_cmd(ws, path, fmt_in, verify_key, fmt):
    """Import a STIX 2.1 bundle (ours, OpenCTI, a TAXII envelope), a MISP event JSON or a MISP feed directory.

    Every address becomes a registry tag with its producer, TLP and confidence: `chaintrace intel lookup`
    and screening then know it. Importing the same content again does nothing.

    \b
    Example:
      chaintrace share import peer.stix.json
      chaintrace share import ./misp-feed --as misp-feed
    """
    r = share.import_file(ws, path, fmt_in, verify_key=verify_key)
    if fmt == "json":
        return print_json(r)
    if r.get("skipped_as") is not None:
        console.print(f"{path}: already imported (#{r['skipped_as']})", highlight=False)
        return
    console.print(f"{path}: {r['format']} from {r['producer'] or 'unknown producer'} -> import #{r['import_id']}: "
                  f"{r['tags']:,} tags, {r['actors']:,} actors, {r.get('incidents', 0):,} incidents, "
                  f"{r['rejected']:,} rejected", highlight=False)
    if r["rejects"]:
        console.print(table("rejected", ["address", "chain", "reason"],
                            [(x["address"], x["chain"], x["reason"]) for x in r["rejects"][:20]]))


@share_group.command("keygen")
@click.argument("keyfile", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite an existing key file.")
@format_option("text", "json")
def keygen_cmd(keyfile, force, fmt):
    """Create an ed25519 signing key: KEYFILE (private, mode 0600) and KEYFILE.pub (give this to recipients).

    \b
    Example:
      chaintrace share keygen me.key
    """
    r = share.keygen(keyfile, overwrite=force)
    if fmt == "json":
        return print_json(r)
    console.print(f"private key {r['private_key']} (keep it), public key {r['public_key']} (key id {r['key_id']})",
                  highlight=False)


@share_group.command("verify")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--sig", "sig", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Signature file (default PATH.sig).")
@click.option("--key", "key", default=None, help="The producer's public key you trust (.pub file or hex).")
@format_option("text", "json")
def verify_cmd(path, sig, key, fmt):
    """Check that PATH is unchanged since it was signed, and by whom (exit 1 when it is not valid).

    \b
    Example:
      chaintrace share verify registry.stix.json --key peer.key.pub
    """
    r = share.verify(path, signature=sig, key=key)
    if fmt == "json":
        print_json(r)
    else:
        mark = "[green]VALID[/]" if r["valid"] else "[bold red]INVALID[/]"
        console.print(f"{mark} {path}: {r['reason']} (signing key {r['key_id']})", highlight=False)
    if not r["valid"]:
        raise ChaintraceError(f"{path}: signature check failed: {r['reason']}")


def _key_opts(f):
    f = click.option("--key", "key", default=None, envvar="CHAINTRACE_TAXII_KEY",
                     help="API key of the peer (sent as the HTTP Basic password) [env CHAINTRACE_TAXII_KEY].")(f)
    f = click.option("--user", default=None, help="HTTP Basic user name (servers with user accounts, e.g. medallion).")(f)
    f = click.option("--password", default=None, envvar="CHAINTRACE_TAXII_PASSWORD",
                     help="HTTP Basic password, when it is not an API key [env CHAINTRACE_TAXII_PASSWORD].")(f)
    f = click.option("--collection", required=True, help="Collection id on the peer (see its /collections/).")(f)
    f = click.option("--taxii", "url", required=True,
                     help="API root URL of the peer, e.g. http://127.0.0.1:8000/taxii2/chaintrace/")(f)
    return f


@share_group.command("pull")
@_key_opts
@click.option("--full", is_flag=True, help="Fetch everything, not only what was added since the last pull.")
@format_option("text", "json")
@data_option
def pull_cmd(ws, url, collection, key, user, password, full, fmt):
    """Fetch a peer's TAXII collection into the registry (only objects added since the last pull).

    \b
    Example:
      chaintrace share pull --taxii http://127.0.0.1:8000/taxii2/chaintrace/ --collection ID --key $PEER_KEY
    """
    from chaintrace.share.taxii_client import pull

    r = pull(ws, url, collection, key=key, user=user, password=password, full=full)
    if fmt == "json":
        return print_json(r)
    imp = r["import"]
    what = "nothing new" if imp is None else (
        f"already imported (#{imp['skipped_as']})" if imp.get("skipped_as") is not None else
        f"import #{imp['import_id']}: {imp['tags']:,} tags, {imp['rejected']:,} rejected")
    console.print(f"pulled {r['objects']:,} objects from {url} collection {collection} "
                  f"(added after {r['added_after'] or 'the beginning'}): {what}", highlight=False)


@share_group.command("push")
@_key_opts
@click.option("--max-tlp", default="green", show_default=True, type=click.Choice(["clear", "green", "amber"]),
              help="Highest TLP to send (amber: you vouch the peer's members may receive it). RED and "
                   "AMBER+STRICT never leave.")
@click.option("--skip-type", "skip_types", multiple=True,
              help="STIX types not to send (e.g. extension-definition for medallion 3.0, which fails on them).")
@click.option("--producer", default="chaintrace", show_default=True, help="Name of the producing organisation.")
@format_option("text", "json")
@data_option
def push_cmd(ws, url, collection, key, user, password, max_tlp, skip_types, producer, fmt):
    """Send the shareable registry to a peer's TAXII collection (only what was not sent before).

    \b
    Example:
      chaintrace share push --taxii http://127.0.0.1:8000/taxii2/chaintrace/ --collection ID --key $PEER_KEY
    """
    from chaintrace.share.taxii_client import push

    r = push(ws, url, collection, key=key, user=user, password=password, max_tlp=max_tlp,
             skip_types=skip_types, producer=producer)
    if fmt == "json":
        return print_json(r)
    console.print(f"pushed {r['pushed']:,} objects to {url} collection {collection} ({r['accepted']:,} accepted, "
                  f"{r['refused']:,} refused, {r['already_pushed']:,} pushed before)", highlight=False)
    for why, n in r["held_back"].items():
        console.print(f"[yellow]held back:[/] {n:,} object(s): {why}", highlight=False)


@share_group.group("collection")
def collection_group():
    """TAXII collections of this server (`chaintrace serve` publishes them under /taxii2/)."""


@collection_group.command("create")
@click.option("--id", "cid", default=None, help="Collection id (default: a new UUID).")
@click.option("--title", required=True)
@click.option("--description", default="")
@click.option("--read", "readers", default="*", show_default=True,
              help="Organisations that may read (comma list; * = every key holder).")
@click.option("--write", "writers", default="", help="Organisations that may write (comma list).")
@click.option("--max-tlp", default="green", show_default=True,
              type=click.Choice(["clear", "green", "amber", "amber+strict", "red"]),
              help="Highest TLP the collection carries (amber: every member may receive AMBER; amber+strict and "
                   "red: only a collection whose sole member is the producing organisation).")
@click.option("--hide", default="", help="Properties removed before serving (comma list: amounts, notes, names).")
@format_option("text", "json")
@data_option
def collection_create(ws, cid, title, description, readers, writers, max_tlp, hide, fmt):
    """Create (or replace) a TAXII collection with its readers, writers, TLP limit and hidden properties.

    \b
    Example:
      chaintrace share collection create --title "ISAC exchange" --read bank-a,bank-b --write bank-a,bank-b --hide amounts
    """
    from chaintrace.share.taxii_server import create_collection

    r = create_collection(ws, cid=cid, title=title, description=description, readers=readers, writers=writers,
                          max_tlp=max_tlp, hide=hide)
    if fmt == "json":
        return print_json(r)
    console.print(f"collection {r['id']} ({r['title']}): read {', '.join(r['readers'])}; write "
                  f"{', '.join(r['writers']) or 'nobody'}; up to TLP:{r['max_tlp'].upper()}"
                  + (f"; hides {', '.join(r['hidden'])}" if r["hidden"] else ""), highlight=False)


@collection_group.command("list")
@format_option("text", "json")
@data_option
def collection_list(ws, fmt):
    """List this server's TAXII collections.

    \b
    Example:
      chaintrace share collection list --format json
    """
    from chaintrace.share.taxii_server import list_collections

    rows = list_collections(ws)
    if fmt == "json":
        return print_json(rows)
    console.print(table("TAXII collections", ["id", "title", "read", "write", "max TLP", "hides", "objects"],
                        [(r["id"], r["title"], ", ".join(r["readers"]), ", ".join(r["writers"]), r["max_tlp"],
                          ", ".join(r["hidden"]), r["objects"]) for r in rows]))
