"""MkDocs hook: the dataset config key reference, printed at build time by
`driftline.config.reference.key_reference()` from the config models (the same models the loader
checks keys against), so the page never restates a key, type or default.
tests/integration/test_docs.py checks the built page lists every key of the models.
"""

from __future__ import annotations

PLACEHOLDER = "<!-- config-keys -->"
# Where each table is explained (relative to docs/configure/reference.md).
SECTION_PAGES = {
    "dataset": "dataset.md",
    "features": "dataset.md",
    "source": "dataset.md#where-an-intervals-input-comes-from",
    "schedule": "dataset.md",
    "database": "dataset.md",
    "validation": "../operate/score-batch.md",
    "model": "dataset.md",
    "drift": "../analyse/drift.md",
    "scoring": "../operate/score-batch.md",
    "retraining": "../operate/lifecycle.md",
    "safeguards": "../operate/alerts.md",
    "alerts": "../operate/alerts.md",
    "explain": "../analyse/sql.md#why-was-this-row-scored-high-explain",
    "monitoring": "../analyse/estimates.md#segments-monitoring-segments",
    "handoff": "../bring-your-own-model.md",  # #29
}


def sections() -> list[str]:
    """The top-level tables of a dataset config, in the models' order."""
    from driftline.config.reference import key_rows

    return list(dict.fromkeys(key.split(".")[0] for _, key, *_ in key_rows()))


def reference_markdown() -> str:
    """Where each table is explained, then the key table of driftline.config.reference."""
    from driftline.config.reference import key_reference

    links = [
        f"- `[{name}]`: [{SECTION_PAGES[name].split('#')[0].rsplit('/', 1)[-1]}]({SECTION_PAGES[name]})"
        for name in sections()
        if name in SECTION_PAGES
    ]
    return "## Where each table is explained\n\n" + "\n".join(links) + "\n\n## Keys\n\n" + key_reference()


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001 - MkDocs hook signature
    if PLACEHOLDER not in markdown:
        return markdown
    return markdown.replace(PLACEHOLDER, reference_markdown())
