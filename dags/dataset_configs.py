"""dataset_configs: defines no DAG; it makes every dataset config that fails to load visible.

Airflow records import errors per DAG file, and a DAG file that raises loses all of its DAGs. So
score_batch.py, monitor_drift.py and retrain_model.py build the DAGs of every config that loads and
skip a broken one, and this file raises one import error that names each broken config file and key
(the Airflow UI's "DAG Import Errors", `airflow dags list-import-errors`). Fix the file and the next
parse brings that dataset's three DAGs back; the other datasets keep running meanwhile. Broken means
what the DAG files skip (driftline.airflow.dag_defaults.deployment): a config load_config refuses, or
one whose schedule Airflow's timetable refuses; and a dataset whose DAG of a role file fails to build
all the same (dag_defaults.dags_not_built runs the role files once more to find those).
"""

from __future__ import annotations

from pathlib import Path

# The role files' Airflow imports, named here so the dag-processor pre-imports them before parsing this
# file too ([dag_processor] parsing_pre_import_modules), as it does for the role files it runs below.
import airflow.providers.standard.operators.empty  # noqa: F401
import airflow.providers.standard.operators.trigger_dagrun  # noqa: F401

from driftline.airflow.dag_defaults import dags_not_built, deployment

datasets = deployment()
datasets.broken.extend(dags_not_built(Path(__file__).resolve().parent))
error = datasets.error()
if error is not None:
    raise error
