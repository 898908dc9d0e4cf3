"""Device simulator: seeded machine signals sent as ``telemetry.readings.v1`` over Kafka or HTTP."""

from millrace.simulator.config import ConfigError, SimulatorConfig
from millrace.simulator.generator import BatchBuilder, Message, generate
from millrace.simulator.report import SentBatch, SimulationReport
from millrace.simulator.runner import run_simulation

__all__ = [
    "BatchBuilder",
    "ConfigError",
    "Message",
    "SentBatch",
    "SimulationReport",
    "SimulatorConfig",
    "generate",
    "run_simulation",
]
