"""Keeping credentials out of output: mask passwords in database URLs, register them with Airflow's masker.

Standard library only: config.py uses it at DAG parse time.
"""

from __future__ import annotations

import re


def mask_url(url: str) -> str:
    """The URL or libpq DSN with any password replaced by ***, for logs and error messages."""
    if "://" in url:
        masked = re.sub(r"(://[^:/@]*:)[^@]+@", r"\1***@", url)  # scheme://user:password@
        return re.sub(r"([?&]password=)[^&]*", r"\1***", masked)  # ...?password=
    return re.sub(r"(\bpassword\s*=\s*)('[^']*'|\S+)", r"\1***", url)  # host=... password=...


def has_password(url: str) -> bool:
    return mask_url(url) != url


def url_password(url: str) -> str | None:
    """The password inside a URL or DSN (to scrub it from third-party messages), or None."""
    if "://" in url:
        from urllib.parse import parse_qs, unquote, urlsplit

        parts = urlsplit(url)
        if parts.password:
            return unquote(parts.password)
        found = parse_qs(parts.query).get("password")
        return found[0] if found else None
    match = re.search(r"\bpassword\s*=\s*('[^']*'|\S+)", url)
    return match.group(1).strip("'") if match else None


def scrub(text: str, url: str) -> str:
    """text with the URL's password (raw or percent-encoded) replaced by ***."""
    from urllib.parse import quote

    password = url_password(url)
    if not password:
        return text
    for form in {password, quote(password, safe="")}:
        text = text.replace(form, "***")
    return text


def register_with_airflow(url: str) -> None:
    """Inside an Airflow task, have Airflow's secrets masker redact the URL's password in task logs."""
    password = url_password(url)
    if not password:
        return
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # not running under Airflow (CLI, tests of plain functions)
        return
    mask_secret(password)
