"""Transaction-shape detectors over the graph arrays: CoinJoins (:mod:`.coinjoin`), change outputs
(:mod:`.change`), peeling chains (:mod:`.peel`). Each is a numba kernel over a range of dense transaction
ids that returns flat arrays (one value per transaction or output), never per-transaction objects."""
