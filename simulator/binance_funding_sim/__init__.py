"""binance-funding-sim: a local stand-in for Binance's USDⓈ-M fstream and fapi services.

Used by the demo, the tests and dry runs on the controller; never installed on the droplet.
See :mod:`binance_funding_sim.server`.
"""

from binance_funding_sim.server import (
    Simulator,
    SimulatorConfig,
    SimulatorThread,
    finish_leftover_tasks,
)

__all__ = ["Simulator", "SimulatorConfig", "SimulatorThread", "finish_leftover_tasks"]
