"""Keeping credentials out of output: mask passwords in database URLs, hand them to a log masker.

Standard library only: config.py uses it at DAG parse time. The log masker is installed by the
Airflow adapter (driftline.airflow.connections); without one, passwords are only masked in our text.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_secret_masker: Callable[[str], None] | None = None


def set_secret_masker(fn: Callable[[str], None] | None) -> None:
    """Install fn, called with every database password driftline sees (None removes it)."""
    global _secret_masker
    _secret_masker = fn


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


def register_password(url: str) -> None:
    """Hand the URL's password to the installed log masker (in a task: Airflow's, which then redacts it)."""
    password = url_password(url)
    if password and _secret_masker is not None:
        _secret_masker(password)
