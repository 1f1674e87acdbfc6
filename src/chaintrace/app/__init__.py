"""Applications built from the whole library: the end-to-end demo (:mod:`.demo`: simulate a hack, ingest,
import intelligence, cluster, trace, report) and the scoring of traces against the simulator's ground truth
(:mod:`.evaluate`). The top of the layers: it may use every package but the CLI, and nothing imports it but
the CLI, the benchmarks and the tests."""
