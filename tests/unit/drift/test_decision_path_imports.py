"""monitor_drift's decision path (compare, segments, estimate, decide) never imports Evidently: its
import costs seconds per task process, and only render_report draws Evidently's HTML."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers import DEMO_CONFIG, REPO

CODE = f"""
import sys
import numpy as np, pandas as pd
import driftline.drift.decision, driftline.drift.monitor, driftline.drift.performance
from driftline.config import load_config
from driftline.drift.segments import drifted_count
from driftline.drift.statistics import SCORE_COLUMN, drift_results

config = load_config({str(DEMO_CONFIG)!r})
rng = np.random.default_rng(0)
def frame(n):
    data = {{f.name: rng.normal(size=n) if f.type == "numeric" else rng.choice(["a", "b"], n).astype(object)
            for f in config.features}}
    return pd.DataFrame({{**data, SCORE_COLUMN: rng.random(n)}})
drift_results(config, frame(300), frame(300))  # the configured (default) methods
drifted_count(config, frame(300), frame(300), skip=config.categorical_features[0])
print(sorted(m for m in ("evidently", "lightgbm") if m in sys.modules))
"""


def test_the_decision_path_imports_neither_evidently_nor_lightgbm():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "include"), str(REPO)])}
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stderr[-2000:]
