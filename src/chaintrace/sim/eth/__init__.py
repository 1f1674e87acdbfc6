"""Ethereum simulator: an ethereum-etl export of an economy with a bridge-drain incident."""
from chaintrace.sim.eth.run import simulate_eth
from chaintrace.sim.eth.scenarios import SCENARIOS

__all__ = ["simulate_eth", "SCENARIOS"]
