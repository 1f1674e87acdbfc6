"""Bitcoin simulator: a regtest (or other network) chain with an economy and a laundering incident."""
from chaintrace.sim.btc.run import simulate_btc
from chaintrace.sim.output import SimResult
from chaintrace.sim.btc.scenarios import SCENARIOS

__all__ = ["simulate_btc", "SimResult", "SCENARIOS"]
