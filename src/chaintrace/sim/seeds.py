"""``stolen.txt``: the seeds of every simulated theft, one per line, for ``chaintrace trace --from-file``."""
from __future__ import annotations

from pathlib import Path


def write_seed_file(path: Path, truth: dict) -> int:
    """Write the stolen outputs (Bitcoin: ``txid:vout``) or drain transactions (Ethereum: transaction hash)
    of every incident in `truth`; returns the number of seeds."""
    lines = [f"# stolen value of the simulated incidents ({truth['chain']}, scenario {truth['scenario']}, "
             f"seed {truth['seed']}): chaintrace trace --from-file {Path(path).name}"]
    n = 0
    for inc in truth.get("incidents", []):
        lines.append(f"# incident {inc.get('id', '')}")
        if truth["chain"] == "btc":
            for o in inc["stolen"]["outputs"]:
                lines.append(f"{o['txid']}:{o['vout']}")
                n += 1
        elif inc.get("drain_tx"):
            lines.append(inc["drain_tx"])
            n += 1
    Path(path).write_text("\n".join(lines) + "\n")
    return n
