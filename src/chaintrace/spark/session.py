"""The SparkSession and the store's tables as Spark DataFrames (read straight from the committed segments
the manifest names: no conversion, no copy).

:func:`spark_session` starts (or reuses) a session for a master URL (``local[N]``, ``spark://HOST:PORT``,
``yarn``, ``k8s://...``) with ``K=V`` settings; ``spark-submit`` passes its own and they win.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from chaintrace.errors import UserError
from chaintrace.store.workspace import Workspace

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

# Settings applied unless the caller (or spark-submit) sets them: small shuffles for a laptop, no _SUCCESS
# marker files in the store, Arrow for the columnar hand-over to the CoinJoin kernel.
DEFAULTS = {
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.parquet.compression.codec": "zstd",
    "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
    "spark.ui.showConsoleProgress": "true",
}


def defaults_for(master: str | None) -> dict[str, str]:
    """:data:`DEFAULTS`, plus for local mode (``local[N]``; the driver is the only executor) a driver heap of
    half the machine's memory (Spark's own default, 1 GB, runs out at about a million transactions)."""
    out = dict(DEFAULTS)
    if (master or "").startswith("local"):
        import os

        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            total = 4 << 30
        out["spark.driver.memory"] = f"{max(1, total // 2 >> 30)}g"
    return out


def require_pyspark():
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise UserError("pyspark is not installed: pip install 'chaintrace[spark]' (and a Java 17+ runtime)") \
            from None


def parse_conf(pairs) -> dict[str, str]:
    """``["K=V", ...]`` -> dict; a pair without '=' is a user error naming it."""
    out: dict[str, str] = {}
    for p in pairs or ():
        k, sep, v = p.partition("=")
        if not sep or not k.strip():
            raise UserError(f"--conf {p!r}: expected KEY=VALUE (e.g. spark.executor.memory=8g)")
        out[k.strip()] = v
    return out


def spark_session(master: str | None = None, conf: dict[str, str] | None = None,
                  app_name: str = "chaintrace") -> "SparkSession":
    """A SparkSession (the active one when it exists, as under spark-submit; `master`/`conf` then only add
    settings that can still change at run time)."""
    require_pyspark()
    import os
    import sys

    from pyspark.sql import SparkSession

    # Python workers run this interpreter (it has chaintrace and its dependencies), unless told otherwise
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    active = SparkSession.getActiveSession()
    if active is not None:
        for k, v in (conf or {}).items():
            try:
                active.conf.set(k, v)
            except Exception:  # static settings of a running session (spark.executor.memory ...)
                pass
        return active
    b = SparkSession.builder.appName(app_name)
    if master:
        b = b.master(master)
    for k, v in {**defaults_for(master), **(conf or {})}.items():
        b = b.config(k, v)
    return b.getOrCreate()


def store_table(spark: "SparkSession", ws: Workspace, table: str, chain: str = "btc") -> "DataFrame":
    """A table of the workspace's chain store: the Parquet segments the manifest names."""
    store = ws.require_chain(chain)
    files = [str(p) for p in store.files(table)]
    if not files:
        raise UserError(f"{ws.path}/{chain}: table {table} is empty; ingest blocks first")
    return spark.read.parquet(*files)


def store_meta(ws: Workspace, chain: str = "btc") -> dict:
    """Commit, network, tip and row counts of the chain store (from the manifest)."""
    store = ws.require_chain(chain)
    m = store.manifest
    return {"commit": m["commit"], "network": store.meta.get("network", "main"), "tip": store.tip,
            "n_tx": store.row_count("transactions"), "n_addresses": store.row_count("addresses"),
            "n_outputs": store.row_count("outputs")}


def spark_running() -> bool:
    """Whether this process has a SparkContext already (a caller's session: leave it running)."""
    from pyspark import SparkContext

    return SparkContext._active_spark_context is not None


def stop_spark() -> bool:
    """Stop the active session and, when this process launched the JVM (local masters in-process, not under
    spark-submit, whose JVM is the parent), end that JVM too, so its heap is given back before single-machine
    work (the screening index) follows. Returns whether a JVM was ended; a later :func:`spark_session`
    starts a new one."""
    import subprocess

    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        active.stop()
    gw = SparkContext._gateway
    proc = getattr(gw, "proc", None)
    if gw is None or proc is None:
        return False
    gw.shutdown()
    if proc.stdin is not None:
        proc.stdin.close()  # the gateway server exits when its stdin closes
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    SparkContext._gateway = None
    SparkContext._jvm = None
    return True
