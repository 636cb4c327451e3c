"""The lines a kitbuild image logs: one JSON object a line, each with an ``event`` key.

This module is their only writer (:func:`line`) and their only reader (:func:`read`), so
the entrypoint, ``kitbuild verify``, the benchmark and the tests agree on the format.
The plan gets a typed record, :class:`PlanRecord`: the entrypoint writes one before it
becomes gunicorn, and whoever starts the image reads it back from the container's log.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from kitbuild_runtime.capacity import Plan

#: The plan the entrypoint serves with.
PLAN = "kitbuild.plan"
#: Something the operator should know and can fix (a misspelt variable, a mismatch).
WARNING = "kitbuild.warning"
#: ``serve`` waited for the image's migrations (``waiting``), then found them applied.
MIGRATIONS = "kitbuild.migrations"
#: Which settings module the image overlays, and what the project's modules assigned.
SETTINGS = "kitbuild.settings"
#: The ``static`` command copied the collected files.
STATIC = "kitbuild.static"


def line(event: str, fields: Mapping[str, Any]) -> str:
    """One log line (no newline) for ``event`` with ``fields``."""
    return json.dumps({"event": event, **fields}, separators=(",", ":"))


def read(text: str, event: str) -> list[dict[str, Any]]:
    """Every ``event`` record in a log, oldest first; other lines are skipped."""
    found = []
    for raw in text.splitlines():
        candidate = raw.strip()
        if not candidate.startswith("{"):
            continue
        try:
            record = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") == event:
            found.append(record)
    return found


@dataclasses.dataclass(frozen=True)
class PlanRecord:
    """The plan an app container serves with, and the server limit it saw at start."""

    plan: Plan
    server_max_connections: int | None

    def as_dict(self) -> dict[str, Any]:
        """The plan's fields plus ``server_max_connections``, JSON-ready."""
        return {**self.plan.as_dict(), "server_max_connections": self.server_max_connections}

    def to_line(self) -> str:
        """The log line the entrypoint writes."""
        return line(PLAN, self.as_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlanRecord:
        """A record from :meth:`as_dict`'s data (or a parsed log line)."""
        server = data.get("server_max_connections")
        return cls(Plan.from_dict(data), None if server is None else int(server))


def find_plan(log: str) -> PlanRecord | None:
    """The last plan an image logged (a restarted container logs one per start), or None."""
    records = read(log, PLAN)
    return PlanRecord.from_dict(records[-1]) if records else None
