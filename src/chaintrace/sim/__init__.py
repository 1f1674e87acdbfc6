"""Ground-truth simulator: chains in real formats (Bitcoin Core block files, ethereum-etl CSV) with an
economy, laundering incidents and exact truth (see docs/simulator.md).

>>> from chaintrace.sim import simulate_btc, load_truth
>>> r = simulate_btc("sim", txs=20_000, seed=1, scenario="dprk")        # doctest: +SKIP
>>> truth = load_truth("sim")                                           # doctest: +SKIP
"""
from __future__ import annotations


def __getattr__(name: str):
    lazy = {
        "simulate_btc": ("chaintrace.sim.btc.run", "simulate_btc"),
        "SimResult": ("chaintrace.sim.output", "SimResult"),
        "BTC_SCENARIOS": ("chaintrace.sim.btc.scenarios", "SCENARIOS"),
        "load_truth": ("chaintrace.sim.truth", "load_truth"),
        "address_entities": ("chaintrace.sim.truth", "address_entities"),
    }
    if name in lazy:
        import importlib

        mod, attr = lazy[name]
        return getattr(importlib.import_module(mod), attr)
    raise AttributeError(f"module 'chaintrace.sim' has no attribute {name!r}")


__all__ = ["simulate_btc", "SimResult", "BTC_SCENARIOS", "load_truth", "address_entities"]
