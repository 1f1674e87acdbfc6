"""Shared CLI plumbing: --data and --format options, output (Rich tables or JSON), Rich progress."""
from __future__ import annotations

import csv
import functools
import io
import json
import os
import sys
from datetime import datetime, timezone
from decimal import Decimal
from typing import Callable

import click
from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress as RichBar, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn, TransferSpeedColumn)
from rich.table import Table

from chaintrace.progress import Progress
from chaintrace.store.workspace import ENV_DATA, Workspace

class _Stdout:
    """Rich console on the *current* stdout: terminal width on a terminal, wide (no folding of ids and
    addresses) when piped or captured."""

    def print(self, *args, **kwargs) -> None:
        wide = None if sys.stdout.isatty() else max(200, int(os.environ.get("COLUMNS") or 0))
        Console(file=sys.stdout, width=wide).print(*args, **kwargs)


console = _Stdout()
err_console = Console(stderr=True)

# JSON fields holding amounts in base units: written as decimal strings (exact for any size, and safe in
# JavaScript, whose numbers lose precision above 2**53).
AMOUNT_KEYS = frozenset({
    "value", "fee", "input_value", "output_value", "received", "sent", "balance", "total_output_value",
    "utxo_value", "amount", "total", "gas_fee", "burned", "tip",
    "peeled_total", "passed", "median",  # chaintrace detect
})


def data_option(f: Callable) -> Callable:
    """Add ``--data DIR`` and pass a ``ws`` Workspace (falls back to the group's --data, env, default).

    When the command fails, directories it created in the workspace that hold no data are removed again
    (and the workspace directory itself when the command created it)."""

    @click.option("--data", "data_dir", type=click.Path(file_okay=False), default=None,
                  help=f"Workspace directory [env {ENV_DATA}; default ./chaintrace-data].")
    @click.pass_context
    @functools.wraps(f)
    def wrapper(ctx, data_dir, *args, **kwargs):
        root = (ctx.find_root().params or {}).get("data_dir") if ctx.find_root() else None
        ws = Workspace(data_dir or root)
        before = ws.entries()
        try:
            return ctx.invoke(f, ws, *args, **kwargs)
        except BaseException as e:
            if not (isinstance(e, SystemExit) and e.code in (0, None)):
                ws.discard_new_empty(before)  # a failed command leaves no empty workspace behind
            raise

    return wrapper


def format_option(*choices: str, default: str = "text") -> Callable:
    return click.option("--format", "fmt", type=click.Choice(list(choices)), default=default, show_default=True,
                        help="Output for people (text) or programs (json" + (", csv" if "csv" in choices else "")
                        + ").")


def jsonable(obj, key: str | None = None):
    if isinstance(obj, dict):
        return {k: jsonable(v, k) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, key) for v in obj]
    if isinstance(obj, bool) or obj is None:
        return obj
    if isinstance(obj, (int, Decimal)) and key in AMOUNT_KEYS:
        return str(int(obj))
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, bytes):
        return obj.hex()
    if isinstance(obj, datetime):
        return obj.isoformat()
    if hasattr(obj, "item"):  # numpy scalars
        return jsonable(obj.item(), key)
    if isinstance(obj, (int, float, str)):
        return obj
    return str(obj)


def print_json(obj) -> None:
    click.echo(json.dumps(jsonable(obj), indent=2, ensure_ascii=False))


def print_csv(columns: list[str], rows, chunk: int = 4096) -> None:
    """Write CSV to stdout, `chunk` rows at a time (rows may be a stream)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(columns)
    for i, r in enumerate(rows, 1):
        w.writerow(["" if v is None else (v.hex() if isinstance(v, bytes) else v) for v in r])
        if i % chunk == 0:
            click.echo(buf.getvalue(), nl=False)
            buf.seek(0)
            buf.truncate()
    click.echo(buf.getvalue(), nl=False)


def table(title: str | None, columns: list[str], rows, justify: dict[str, str] | None = None) -> Table:
    t = Table(title=title, title_justify="left", header_style="bold")
    for c in columns:
        t.add_column(c, justify=(justify or {}).get(c, "left"), overflow="fold")
    for r in rows:
        t.add_row(*["" if v is None else str(v) for v in r])
    return t


def btc(value: int | None) -> str:
    if value is None:
        return "?"
    sign = "-" if value < 0 else ""
    q, r = divmod(abs(int(value)), 100_000_000)
    return f"{sign}{q:,}.{r:08d}"


def when(ts: int | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(int(ts), timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


class RichProgress(Progress):
    """Progress bars on stderr (hidden when stderr is not a terminal)."""

    def __init__(self):
        self.bar: RichBar | None = None
        self.task = None

    def start(self, description: str, total: int | None = None, unit: str = "") -> None:
        self.finish()
        cols = [TextColumn("[bold]{task.description}"), BarColumn()]
        if unit == "bytes":
            cols += [DownloadColumn(), TransferSpeedColumn()]
        else:
            cols += [MofNCompleteColumn()]
        cols += [TimeElapsedColumn(), TimeRemainingColumn()]
        self.bar = RichBar(*cols, console=err_console, transient=False, disable=not err_console.is_terminal)
        self.bar.start()
        self.task = self.bar.add_task(description, total=total)

    def advance(self, amount: int = 1, **info) -> None:
        if self.bar is not None:
            self.bar.advance(self.task, amount)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def fail(message: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)
