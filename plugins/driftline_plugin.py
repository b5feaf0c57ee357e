"""Airflow UI plugin: driftline's drift reports and model registry as pages inside the Airflow UI.

Wiring only; the app, its auth guard and the pages live in driftline.airflow.ui.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from driftline.airflow.ui.app import URL_PREFIX, create_app


class DriftlinePlugin(AirflowPlugin):
    name = "driftline"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "driftline"}]
    external_views = [
        {
            "name": "Drift reports",
            "href": f"{URL_PREFIX.lstrip('/')}/reports",
            "url_route": "driftline-reports",
            "destination": "nav",
            "category": "browse",
        },
        {
            "name": "Model registry",
            "href": f"{URL_PREFIX.lstrip('/')}/registry",
            "url_route": "driftline-registry",
            "destination": "nav",
            "category": "browse",
        },
    ]
