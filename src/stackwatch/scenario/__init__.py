"""Seeded generator of realistic multi-host OpenStack cloud logs, with attacks and a manifest
of what they are (used by ``stackwatch demo``, the tests and the benchmark suite)."""

from stackwatch.scenario.generate import DEFAULT_DURATION, DEFAULT_START, demo_dataset, generate
from stackwatch.scenario.manifest import Incident, Manifest

__all__ = ["DEFAULT_DURATION", "DEFAULT_START", "Incident", "Manifest", "demo_dataset", "generate"]
