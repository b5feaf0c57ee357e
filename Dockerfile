# syntax=docker/dockerfile:1
# driftline on the official Airflow image, reproducibly: the package (with its celery extra, for
# CeleryExecutor workers, its s3 extra, for object storage inputs, and its lineage extra, for the
# OpenLineage events of docs/operate/lineage.md) and every dependency are installed at the versions
# pinned in constraints.txt (`bash scripts/lock`), the set CI tests.
#   docker compose build         (or: docker build -t driftline-airflow .)

ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11

# -- builder: a wheel of the package, plus wheels of all its pinned dependencies ---------------------
FROM ${AIRFLOW_IMAGE} AS builder
WORKDIR /build
COPY --chown=airflow:0 pyproject.toml README.md constraints.txt ./
COPY --chown=airflow:0 include ./include
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /build/wheels . \
 && pip wheel --no-cache-dir --constraint constraints.txt --wheel-dir /build/wheels "$(ls /build/wheels/driftline-*.whl)[celery,s3,lineage]"

# -- final: the official image + the wheels, installed offline (no compiler, no sources, no index) ----
FROM ${AIRFLOW_IMAGE}

ENV DRIFTLINE_HOME=/opt/driftline \
    DRIFTLINE_CONFIGS=/opt/driftline/config \
    GX_ANALYTICS_ENABLED=False

# The wheels are bind-mounted from the builder for this one step, so they never become a layer.
# apache-airflow is pinned to the image's own version: the install never up- or downgrades Airflow.
RUN --mount=type=bind,from=builder,source=/build,target=/build \
    pip install --no-cache-dir --no-index --find-links /build/wheels --constraint /build/constraints.txt \
        "apache-airflow==${AIRFLOW_VERSION}" "driftline[celery,s3,lineage]" \
 && pip check

COPY --chown=airflow:0 config /opt/driftline/config
COPY --chown=airflow:0 expectations /opt/driftline/expectations
COPY --chown=airflow:0 dags /opt/airflow/dags
COPY --chown=airflow:0 plugins /opt/airflow/plugins
