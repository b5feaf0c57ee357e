"""Plug Airflow into the domain hooks: connection ids -> URLs, its secret masker, the alert channels, object
storage through ObjectStoragePath."""

from __future__ import annotations


def install() -> None:
    """Register the Airflow connection lookup, log masker, alert deliverer and object store (idempotent;
    imports no Airflow yet)."""
    from driftline import alerts, secrets
    from driftline.airflow import channels, storage
    from driftline.db.connection import set_url_resolver
    from driftline.sources.objects import set_store_resolver

    set_url_resolver(connection_url)
    secrets.set_secret_masker(mask_secret)
    alerts.set_deliverer(channels.deliver)
    set_store_resolver(storage.object_store)


def connection_url(conn_id: str) -> str:
    """The URL of Airflow connection conn_id, in the postgresql:// form psycopg and SQLAlchemy take."""
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(conn_id).get_uri().replace("postgres://", "postgresql://", 1)


def mask_secret(secret: str) -> None:
    """Airflow's task-log masker redacts `secret` from then on."""
    from airflow.sdk.log import mask_secret as airflow_mask_secret

    airflow_mask_secret(secret)
