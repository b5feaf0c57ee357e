"""dataset_configs: defines no DAG; it makes every dataset config that fails to load visible.

Airflow records import errors per DAG file, and a DAG file that raises loses all of its DAGs. So
score_batch.py, monitor_drift.py and retrain_model.py build the DAGs of every config that loads and
skip a broken one, and this file raises one import error that names each broken config file and key
(the Airflow UI's "DAG Import Errors", `airflow dags list-import-errors`). Fix the file and the next
parse brings that dataset's three DAGs back; the other datasets keep running meanwhile. Broken means
what the DAG files skip (driftline.airflow.dag_defaults.deployment): a config load_config refuses, or
one whose schedule Airflow's timetable refuses.
"""

from __future__ import annotations

from driftline.airflow.dag_defaults import deployment

error = deployment().error()
if error is not None:
    raise error
