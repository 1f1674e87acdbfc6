"""chaintrace on Apache Spark: the heavy jobs over the same Parquet store, equal to the embedded engine.

``chaintrace spark run JOB`` (:func:`run_job`) runs one of :data:`JOBS` with the PySpark DataFrame API
(no per-row Python in the hot paths) against the workspace's committed segments, and commits the result
where the embedded engine's own results live, so ``cluster show``, ``sql`` and tracing use it unchanged:

``addresses``  the address table with first appearances; checks the dense ids (:mod:`.addresses`)
``clusters``   multi-input clustering as connected components (large-star/small-star), CoinJoin, size and
               tag guards, cluster id = smallest member (:mod:`.clusters`, :mod:`.cluster_job`)
``stats``      address and cluster statistics (:mod:`.stats`)

Local mode (``--master local[N]``) runs in-process; ``chaintrace spark run --master spark://...|yarn|k8s://``
goes through ``spark-submit`` (:mod:`.submit`). See docs/spark.md.
"""
from chaintrace.spark.jobs import JOBS, run_job
from chaintrace.spark.session import parse_conf, spark_session

__all__ = ["JOBS", "run_job", "spark_session", "parse_conf"]
