"""`chaintrace serve`, `chaintrace keys ...`, `chaintrace audit verify`: the screening service."""
from __future__ import annotations

import click

from chaintrace.cli import main
from chaintrace.cli._common import console, data_option, format_option, print_json, table
from chaintrace.cli.intel import registry_option


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind (127.0.0.1: this machine only; put TLS in front before binding wider).")
@click.option("--port", default=8000, show_default=True, type=int, help="TCP port (0: any free port).")
@click.option("--workers", default=1, show_default=True, type=int,
              help="Worker processes (rate limits are counted per worker).")
@click.option("--config", "config_path", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Screening configuration (YAML/JSON; default: the shipped chaintrace-severity/2).")
@click.option("--build-index/--no-build-index", default=True, show_default=True,
              help="Build the exposure index at start when the current one is missing.")
@click.option("--auto-index/--no-auto-index", default=True, show_default=True,
              help="Rebuild the exposure index in the background after an ingest or an intel import.")
@click.option("--forwarded-allow-ips", default=None,
              help="Reverse proxies whose X-Forwarded-* headers are trusted (e.g. 127.0.0.1).")
@click.option("--ssl-keyfile", default=None, type=click.Path(exists=True, dir_okay=False), help="TLS key (PEM).")
@click.option("--ssl-certfile", default=None, type=click.Path(exists=True, dir_okay=False),
              help="TLS certificate (PEM).")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@registry_option
@data_option
def serve_cmd(ws, host, port, workers, config_path, build_index, auto_index, forwarded_allow_ips, ssl_keyfile,
              ssl_certfile, log_level):
    """Run the HTTP service (FastAPI + uvicorn): screening, the Chainalysis-compatible sanctions endpoint,
    status; OpenAPI at /openapi.json; the web investigation UI at / (docs/ui.md: sign in with an analyst
    key; search, trace graph, screening, incidents, cases, English/Arabic). Clients authenticate with keys
    from `chaintrace keys create`.

    \b
    Example:
      chaintrace keys create --role screener --name exchange-kyt
      chaintrace serve --port 8000
      curl -H "X-API-Key: $KEY" http://127.0.0.1:8000/v1/screen/address/btc/1BoatSLRHtKNngkdXEeobR76b53LETtpyT
      # web UI: open http://127.0.0.1:8000/ and sign in with an analyst key
    """
    from chaintrace.api.server import serve

    serve(ws, host=host, port=port, workers=workers, config_path=config_path, build_index=build_index,
          auto_index=auto_index,
          forwarded_allow_ips=forwarded_allow_ips, ssl_keyfile=ssl_keyfile, ssl_certfile=ssl_certfile,
          log_level=log_level)


@main.group("keys")
def keys_group():
    """API keys of `chaintrace serve` (stored hashed in DATA/api/keys.json)."""


@keys_group.command("create")
@click.option("--role", required=True, type=click.Choice(["screener", "analyst", "admin"]),
              help="screener: screening; analyst: + sharing/tips; admin: everything.")
@click.option("--name", required=True, help="Who the key is for (shown in the audit log).")
@click.option("--org", default="local", show_default=True, help="Organisation the key belongs to.")
@click.option("--limit", default=None, help="Rate limit: REQUESTS/SECONDS (default 1000/1).")
@format_option("text", "json")
@data_option
def keys_create(ws, role, name, org, limit, fmt):
    """Create a key and print it once (only its hash is stored).

    \b
    Example:
      chaintrace keys create --role screener --name exchange-kyt --org acme --limit 5000/300
    """
    from chaintrace.api.keys import create_key

    r = create_key(ws, role, name, org, limit)
    if fmt == "json":
        return print_json(r)
    click.echo(r["key"])
    click.echo(f"key id {r['key_id']}, role {r['role']}, org {r['org']}, limit {r['limit']}/{r['window']}s "
               "(shown once: store it now)", err=True)


@keys_group.command("list")
@format_option("text", "json")
@data_option
def keys_list(ws, fmt):
    """List keys (ids, names, roles, orgs, limits; never the keys).

    \b
    Example:
      chaintrace keys list --format json
    """
    from chaintrace.api.keys import list_keys

    rows = list_keys(ws)
    if fmt == "json":
        return print_json({"keys": rows})
    cols = ["key_id", "name", "role", "org", "limit", "window", "created", "revoked"]
    console.print(table("API keys", cols, [[k[c] for c in cols] for k in rows]))


@keys_group.command("revoke")
@click.argument("key")
@format_option("text", "json")
@data_option
def keys_revoke(ws, key, fmt):
    """Revoke a key by id or name (effective within a second on a running server).

    \b
    Example:
      chaintrace keys revoke exchange-kyt
    """
    from chaintrace.api.keys import revoke_key

    r = revoke_key(ws, key)
    if fmt == "json":
        return print_json(r)
    click.echo(f"revoked {r['key_id']} ({r['name']}) at {r['revoked']}")


@main.group("audit")
def audit_group():
    """The service's audit log (every screening, chained by hashes)."""


@audit_group.command("verify")
@format_option("text", "json")
@data_option
def audit_verify(ws, fmt):
    """Recompute the hash chain of DATA/api/audit.jsonl; exit 1 when a record was edited or deleted.

    \b
    Example:
      chaintrace audit verify --format json
    """
    from chaintrace.api.audit import verify
    from chaintrace.api.keys import api_dir

    r = verify(api_dir(ws))
    if fmt == "json":
        print_json(r)
    elif r["ok"]:
        click.echo(f"ok: {r['records']} records, chain intact, head {r['head']['seq']} {r['head']['hash']}")
    else:
        for p in r["problems"]:
            click.echo(f"{r['log']}:{p['line'] or '-'}: {p['problem']}")
    if not r["ok"]:
        raise SystemExit(1)
