# driftline on the official Airflow image: the package installed (editable, so the include/ mount
# of docker-compose.yml is what runs), Airflow itself kept at the image's version.
FROM apache/airflow:3.3.2-python3.11

ENV DRIFTLINE_HOME=/opt/driftline \
    DRIFTLINE_CONFIG=/opt/driftline/config/demo.toml \
    GX_ANALYTICS_ENABLED=False

COPY --chown=airflow:0 pyproject.toml README.md /opt/driftline/
COPY --chown=airflow:0 include /opt/driftline/include
COPY --chown=airflow:0 config /opt/driftline/config
COPY --chown=airflow:0 expectations /opt/driftline/expectations
COPY --chown=airflow:0 dags /opt/airflow/dags
COPY --chown=airflow:0 plugins /opt/airflow/plugins

# Pin apache-airflow to the image's version so the install never up- or downgrades it.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -e "/opt/driftline[celery]"
