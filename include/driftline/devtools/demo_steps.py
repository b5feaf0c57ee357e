"""TEMPORARY stand-in in H4's branch so the demo runs before merge: H3's devtools/demo_steps.py replaces it."""

from driftline.drift import run_demo_monitoring
from driftline.estimation import print_estimates
from driftline.retraining import print_lifecycle, run_demo_lifecycle

__all__ = ["print_estimates", "print_lifecycle", "run_demo_lifecycle", "run_demo_monitoring"]
