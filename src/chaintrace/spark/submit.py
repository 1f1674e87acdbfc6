"""``spark-submit`` underneath ``chaintrace spark run``: the command line (:func:`submit_command`) and the
driver program it runs (this module as a script: ``python -m chaintrace.spark.submit`` semantics, the
report printed as one JSON line on stdout after the marker :data:`MARK`; Spark's progress goes to stderr).

spark-submit comes with pyspark from PyPI (``pyspark/bin/spark-submit``) or from a Spark installation
(``$SPARK_HOME/bin/spark-submit``, which wins). Executors must be able to import chaintrace: on a cluster,
install it on the nodes or pass ``--py-files`` / a packed environment (docs/spark.md).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from chaintrace.errors import UserError

MARK = "CHAINTRACE-SPARK-REPORT "


def spark_submit_path() -> str:
    """The spark-submit executable: $SPARK_HOME/bin, else pyspark's own, else PATH."""
    home = os.environ.get("SPARK_HOME")
    cands = [Path(home) / "bin" / "spark-submit"] if home else []
    try:
        import pyspark

        cands.append(Path(pyspark.__file__).parent / "bin" / "spark-submit")
    except ImportError:
        pass
    for c in cands:
        if c.is_file():
            return str(c)
    found = shutil.which("spark-submit")
    if found:
        return found
    raise UserError("spark-submit not found: pip install 'chaintrace[spark]' or set SPARK_HOME")


def submit_command(job: str | list[str], data_dir: str, master: str, conf: dict[str, str],
                   job_args: list[str]) -> list[str]:
    """The spark-submit command line running `job` (or several, one after the other in one application)
    against the workspace `data_dir`."""
    jobs = [job] if isinstance(job, str) else list(job)
    cmd = [spark_submit_path(), "--master", master, "--name", f"chaintrace-{'-'.join(jobs)}"]
    env_conf = {"spark.pyspark.python": sys.executable, "spark.pyspark.driver.python": sys.executable}
    from chaintrace.spark.session import defaults_for

    for k, v in {**defaults_for(master), **env_conf, **conf}.items():
        cmd += ["--conf", f"{k}={v}"]
    return cmd + [str(Path(__file__).resolve()), *jobs, "--data", data_dir, *job_args]


def _driver(argv: list[str]) -> int:
    """Entry point under spark-submit: run the job in the submitted SparkSession, print the report."""
    import argparse

    p = argparse.ArgumentParser(prog="chaintrace-spark-driver")
    p.add_argument("jobs", nargs="+")
    p.add_argument("--data", required=True)
    p.add_argument("--cluster-config", default="{}")
    p.add_argument("--tagpack", action="append", default=[])
    p.add_argument("--screen-config", default=None)
    a = p.parse_args(argv)
    from chaintrace.errors import ChaintraceError
    from chaintrace.spark.jobs import run_job
    from chaintrace.store.workspace import Workspace

    cfg = None
    cc = json.loads(a.cluster_config)
    if cc:
        from chaintrace.graph.cluster import ClusterConfig

        cfg = ClusterConfig.parse(cc.pop("heuristics", "mih"), detectors=cc.pop("detectors", None),
                                  activation_heights=cc.pop("activation_heights", True), **cc)
    for job in a.jobs:  # one JVM, one session for all of them, in the order given
        try:
            rep = run_job(Workspace(a.data), job, cluster_config=cfg, tagpack_paths=a.tagpack,
                          screen_config=a.screen_config, index=False)  # the caller writes it (cli.spark)
        except ChaintraceError as e:
            print(MARK + json.dumps({"error": str(e)}), flush=True)
            return 2
        print(MARK + json.dumps(rep, default=str), flush=True)
    return 0


if __name__ == "__main__":  # run by spark-submit
    sys.path[0] = str(Path(__file__).resolve().parents[2])  # the chaintrace source tree, not this directory
    sys.exit(_driver(sys.argv[1:]))
