"""`chaintrace spark run JOB`: the heavy jobs on Apache Spark (chaintrace.spark), spark-submit underneath."""
from __future__ import annotations

import json

import click

from chaintrace.cli import main
from chaintrace.cli._common import RichProgress, console, data_option, format_option, print_json, table
from chaintrace.errors import UserError


@main.group()
def spark():
    """Run the heavy jobs (clustering, statistics, exposure index) on Apache Spark over the same Parquet store.

    Results are committed where the embedded engine keeps its own (clusters in DATA/btc/clusters, tables
    as views btc.address_stats, btc.cluster_stats, btc.address_table), so `cluster show` and `sql` use
    them unchanged. Needs pyspark (pip install 'chaintrace[spark]') and Java 17+. See docs/spark.md.
    """


def _cluster_config(no_activation_heights, max_merge_size, no_tag_guard, coinjoin, detectors) -> dict:
    return {"heuristics": "mih", "detectors": detectors, "activation_heights": not no_activation_heights,
            "max_merge_size": max_merge_size, "tag_guard": not no_tag_guard, "coinjoin": coinjoin}


def _submit(ws, jobs, master, conf, cc: dict, tag_files, screen_config=None) -> list[dict]:
    import subprocess

    from chaintrace.spark.submit import MARK, submit_command

    args = ["--cluster-config", json.dumps(cc)] + [x for t in tag_files for x in ("--tagpack", str(t))]
    if screen_config:
        args += ["--screen-config", str(screen_config)]
    cmd = submit_command(list(jobs), str(ws.path), master, conf, args)
    import os

    from chaintrace.intel import registry as reg

    r = reg.as_registry(ws)  # the driver program screens against the registry this workspace uses
    env = {**os.environ, **({reg.ENV_REGISTRY: str(r.path)} if r is not None else {})}
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env)  # stderr (Spark's progress) goes on
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if not lines:
        raise UserError(f"spark-submit exited with status {proc.returncode} without a report (command: "
                        f"{' '.join(cmd[:3])} ...); see Spark's messages above")
    reps = [json.loads(ln[len(MARK):]) for ln in lines]
    for rep in reps:
        if "error" in rep:
            raise UserError(rep["error"])
    if len(reps) < len(jobs):
        raise UserError(f"spark-submit exited with status {proc.returncode} after {len(reps)} of {len(jobs)} jobs; "
                        "see Spark's messages above")
    return reps


def _print(rep: dict) -> None:
    skip = {"config", "notes", "alarms", "edges_by_status", "edges_generated", "tables"}
    rows = [(k, f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v))
            for k, v in rep.items() if k not in skip]
    console.print(table(f"spark {rep['job']}", ["", "value"], rows))
    for name in ("edges_by_status", "tables"):
        if rep.get(name):
            console.print(table(name.replace("_", " "), ["", "rows"], [(k, f"{v:,}") for k, v in rep[name].items()],
                                {"rows": "right"}))
    for n in rep.get("notes", []):
        console.print(f"note: {n}", highlight=False)


@spark.command("run")
@click.argument("jobs", nargs=-1, required=True, type=click.Choice(["addresses", "clusters", "stats", "exposure"]))
@click.option("--master", default="local[*]", show_default=True,
              help="Spark master: local[N], spark://HOST:PORT, yarn, k8s://https://HOST:PORT.")
@click.option("--conf", "confs", multiple=True, metavar="K=V",
              help="Spark setting (repeatable), e.g. spark.executor.memory=8g, spark.sql.shuffle.partitions=2000.")
@click.option("--in-process", is_flag=True,
              help="Run the job in this process (local masters) instead of through spark-submit.")
@click.option("--no-activation-heights", is_flag=True,
              help="clusters: detect CoinJoins below the protocols' mainnet launch heights (simulated chains).")
@click.option("--max-merge-size", type=int, default=100_000, show_default=True,
              help="clusters: refuse a union when both clusters already have this many addresses (0: no limit).")
@click.option("--tags", "tag_files", multiple=True, type=click.Path(exists=True),
              help="clusters: TagPack YAML for the service-tag guard, besides the registry.")
@click.option("--no-tag-guard", is_flag=True, help="clusters: no tag-conflict guard.")
@click.option("--coinjoin", type=click.Choice(["skip", "include"]), default="skip", show_default=True,
              help="clusters: skip: never union across a detected CoinJoin.")
@click.option("--detectors", default=None, help="clusters: CoinJoin detectors [default: all].")
@click.option("--screen-config", "screen_config", type=click.Path(exists=True, dir_okay=False), default=None,
              help="exposure: screening configuration file [default: the shipped one, as `screen index`].")
@format_option("text", "json")
@data_option
def run(ws, jobs, master, confs, in_process, no_activation_heights, max_merge_size, tag_files, no_tag_guard, coinjoin,
        detectors, screen_config, fmt):
    """Run JOB... (addresses, clusters, stats, exposure) on Spark and commit their output into the workspace.

    Several jobs run one after the other in one Spark application (one JVM start): e.g. `clusters stats`.

    clusters: multi-input clustering, equal to `chaintrace cluster build` (layer 0, same guards, cluster id =
    smallest member); stats: address and cluster statistics (views btc.address_stats, btc.cluster_stats);
    addresses: first appearance of every address and a check of the dense ids (view btc.address_table);
    exposure: the screening exposure index, equal to `chaintrace screen index` (views btc.exposure,
    btc.exposure_outputs; `screen` and `serve` answer from it).

    \b
    Example:
      chaintrace spark run clusters --master 'local[2]' --no-activation-heights --tags sim-btc/tags.yaml
      chaintrace spark run stats --master 'local[2]'
      chaintrace spark run exposure --master 'local[2]'

    """
    from chaintrace.spark.session import parse_conf

    conf = parse_conf(confs)
    if any(p.endswith(":") for p in ws.path.parts[1:]):  # s3a://bucket/... (a Path keeps "s3a:")
        raise UserError(f"--data {ws.path}: object-storage workspaces are not supported yet; the commit needs an "
                        "atomic rename: use a directory on a shared filesystem (docs/spark.md)")
    cc = _cluster_config(no_activation_heights, max_merge_size, no_tag_guard, coinjoin, detectors)
    if in_process:
        if not master.startswith("local"):
            raise UserError(f"--in-process runs local masters only, not {master}: drop --in-process to use spark-submit")
        from chaintrace.graph.cluster import ClusterConfig
        from chaintrace.spark import run_job
        from chaintrace.spark.session import require_pyspark, spark_running, stop_spark

        cfg = ClusterConfig.parse(cc.pop("heuristics"), detectors=cc.pop("detectors"),
                                  activation_heights=cc.pop("activation_heights"), **cc)
        require_pyspark()
        ours = not spark_running()  # a session the caller already runs (Python API, tests) is left running
        reps = [run_job(ws, job, master=master, conf=conf, cluster_config=cfg, tagpack_paths=tag_files,
                        screen_config=screen_config, index=False, progress=RichProgress()) for job in jobs]
        if ours:
            stop_spark()
    else:
        reps = _submit(ws, jobs, master, conf, cc, tag_files, screen_config)
    for rep in reps:  # the screening index: single-machine work, done once Spark's JVM has ended
        if rep["job"] == "exposure":
            from chaintrace.screen import load_config
            from chaintrace.spark.exposure_job import write_exposure_index

            rep.update(write_exposure_index(ws, load_config(screen_config), progress=RichProgress()))
    if fmt == "json":  # one job: its report; several: {"jobs": [report, ...]}
        return print_json(reps[0] if len(reps) == 1 else {"jobs": reps})
    for rep in reps:
        _print(rep)
