"""Render the Jinja2 templates under images/ (the only place Dockerfile text lives)."""

from __future__ import annotations

from importlib import resources
from typing import Any

import jinja2


def _source(path: str) -> str:
    """The text of ``images/<path>``."""
    return resources.files("builder.definitions").joinpath(path).read_text()


def render_template(path: str, **values: Any) -> str:
    """Render ``images/<path>`` with ``values``; a missing value is an error, not ''.

    A template may import macros from another under images/ by its path there.
    """
    environment = jinja2.Environment(
        loader=jinja2.FunctionLoader(_source),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    return environment.get_template(path).render(**values)
