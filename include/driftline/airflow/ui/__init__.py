"""Pages inside the Airflow UI: drift reports and the model registry (read-only).

app.py builds the FastAPI app the plugin mounts (routes, auth, headers); queries.py reads what the
pages show; templates.py renders them; report_files.py maps a report id to its interval and file.
"""
