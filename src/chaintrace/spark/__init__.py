"""chaintrace on Apache Spark: the heavy jobs over the same Parquet store, equal to the embedded engine.

``chaintrace spark run JOB`` (:func:`run_job`) runs one of :data:`JOBS` with the PySpark DataFrame API
(no per-row Python in the hot paths) against the workspace's committed segments, and commits the result
where the embedded engine's own results live, so ``cluster show``, ``sql`` and tracing use it unchanged:

``addresses``  the address table with first appearances; checks the dense ids (:mod:`.addresses`)
``clusters``   multi-input clustering as connected components (large-star/small-star), CoinJoin, size and
               tag guards, cluster id = smallest member (:mod:`.clusters`, :mod:`.cluster_job`)
``stats``      address and cluster statistics (:mod:`.stats`)
``exposure``   the screening exposure index (:mod:`.exposure`, :mod:`.exposure_job`); the index itself is
               written after Spark has stopped (:func:`write_exposure_index`, :func:`stop_spark`)

``chaintrace spark run`` goes through ``spark-submit`` (:mod:`.submit`) for any master (``local[N]``,
``spark://...``, ``yarn``, ``k8s://...``); with ``--in-process`` a local master runs in this process.
See docs/spark.md.
"""
from chaintrace.spark.exposure_job import write_exposure_index
from chaintrace.spark.jobs import JOBS, run_job
from chaintrace.spark.session import parse_conf, spark_session, stop_spark

__all__ = ["JOBS", "run_job", "spark_session", "stop_spark", "write_exposure_index", "parse_conf"]
