"""Render the Jinja2 templates under images/ (the only place Dockerfile text lives)."""

from __future__ import annotations

from importlib import resources
from typing import Any

import jinja2


def render_template(path: str, **values: Any) -> str:
    """Render ``images/<path>`` with ``values``; a missing value is an error, not ''."""
    environment = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    source = resources.files("builder.images").joinpath(path).read_text()
    return environment.from_string(source).render(**values)
