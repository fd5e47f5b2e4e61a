"""Suite files: the format (``model``), safe YAML with locations, and loading."""

from probe.spec.load import load_suite, parse_suite
from probe.spec.model import (
    Behavior,
    DetectorSpec,
    Generation,
    MeaningCheck,
    OperatorSpec,
    Policy,
    PolicyOverride,
    Probe,
    Suite,
)

__all__ = [
    "Behavior",
    "DetectorSpec",
    "Generation",
    "MeaningCheck",
    "OperatorSpec",
    "Policy",
    "PolicyOverride",
    "Probe",
    "Suite",
    "load_suite",
    "parse_suite",
]
