"""The embedded MCF simulator: a real HTTP service that behaves like Amazon's Fulfillment
Outbound API (2020-07-01), FBA Inventory's `getInventorySummaries` and Login with Amazon, so the
whole bridge runs without an Amazon account, and tests can make Amazon misbehave on purpose.

Modules, one job each: `config` (settings), `state` (the `Simulator`), `fulfilment` (order
timeline as pure functions of time), `preview`, `render` (response shapes), `validation`
(requests against Amazon's model in `bridge.amazon.contract`), `envelope` (SP-API errors),
`auth` (LWA), `buckets` (rate limits), `faults`, `ledger`, `dropping` (connection drops),
`inventory` (FBA Inventory v1, from the same stock), `app` + `controls` (HTTP), `server`
(`serve_in_thread`), `run` (`run_simulator`).
"""

from .app import create_simulator_app
from .config import Credentials, Fidelity, OperationLimit, SimulatorConfig, SkuConfig, Timings, load_config
from .dropping import SimulatedConnectionDrop
from .envelope import ApiError
from .faults import Fault, FaultKind
from .ledger import Ledger
from .run import run_simulator
from .server import RunningServer, serve_in_thread
from .state import Simulator

__all__ = [
    "ApiError",
    "Credentials",
    "Fault",
    "FaultKind",
    "Fidelity",
    "Ledger",
    "OperationLimit",
    "RunningServer",
    "SimulatedConnectionDrop",
    "Simulator",
    "SimulatorConfig",
    "SkuConfig",
    "Timings",
    "create_simulator_app",
    "load_config",
    "run_simulator",
    "serve_in_thread",
]
