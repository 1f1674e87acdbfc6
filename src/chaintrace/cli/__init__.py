"""The `chaintrace` command. Each area adds its commands from its own module (imported at the bottom);
commands only parse arguments, call the documented library function and print the result."""
from __future__ import annotations

import click

from chaintrace import __version__
from chaintrace.cli._common import fail
from chaintrace.errors import ChaintraceError
from chaintrace.store.workspace import ENV_DATA


class _Root(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ChaintraceError as e:
            fail(str(e), e.exit_code)
        except KeyboardInterrupt:
            fail("interrupted (committed work is kept; re-run to resume)", 130)


@click.group(cls=_Root, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=None,
              help=f"Workspace directory for every command [env {ENV_DATA}; default ./chaintrace-data].")
@click.version_option(__version__, prog_name="chaintrace")
def main(data_dir):
    """chaintrace: follow stolen cryptocurrency, screen deposits, share intelligence.

    Data lives in a workspace directory (--data, $CHAINTRACE_DATA or ./chaintrace-data): chain data in
    Parquet partitions and a DuckDB catalog. Start with `chaintrace ingest ...`, then `chaintrace stats`.
    """


from chaintrace.cli import cluster, demo, ingest, ingest_eth, intel, show, simulate, trace  # noqa: E402,F401  (register commands)
from chaintrace.cli import screen, serve  # noqa: E402,F401  (screening and the service)
from chaintrace.cli import share  # noqa: E402,F401  (register commands)
from chaintrace.cli import intel_extract  # noqa: E402,F401  (intel extract, intel candidates)
from chaintrace.cli import tips  # noqa: E402,F401  (tips, case)
from chaintrace.cli import watch  # noqa: E402,F401  (chaintrace watch ...)
from chaintrace.cli import spark  # noqa: E402,F401  (chaintrace spark run)
from chaintrace.cli import detect  # noqa: E402,F401  (chaintrace detect KIND)
from chaintrace.cli import report  # noqa: E402,F401  (chaintrace report: documents en/ar, html/pdf)
from chaintrace.cli import cases  # noqa: E402,F401  (chaintrace case ...: cases, audit trail, export)
