"""pyproject.toml without a lock: ``[tool.poetry]`` or ``[project]`` dependencies, to resolve.

Poetry's tables come first when both are there (Poetry reads its own; see
:mod:`builder.image.locks.poetry`). Optional dependencies and PEP 735 dependency groups are
the groups ``--group`` may add. The indexes the file names (``[[tool.uv.index]]``,
``[[tool.poetry.source]]``) are where the resolver and the fetch look.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from builder.errors import ProjectError
from builder.image.locks import poetry
from builder.image.locks.format import Declared, parse_toml, unresolved
from builder.image.locks.requirements import parse_requirements
from builder.image.locks.sources import poetry_sources, uv_indexes

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    from builder.image.locks.format import ProjectFile, Selection
    from builder.image.locks.pins import Target


class PyprojectToml:
    """``pyproject.toml``'s own dependency tables: found last, and only when it has some."""

    name = "pyproject.toml"
    found_by = ("pyproject.toml",)
    manifest = None

    def claims(self, filename: str) -> bool:
        """Only a file named pyproject.toml."""
        return filename == self.name

    def declares_any(self, found: ProjectFile) -> bool:
        """Whether it has ``[tool.poetry]`` or ``[project]`` dependencies."""
        text = found.text()
        if parse_pyproject_dependencies(text, found.source) is not None:
            return True
        return "dependencies" in _poetry_table(parse_toml(text, found.source))

    def declare(self, found: ProjectFile) -> Declared:
        """Poetry's dependencies, else ``[project]``'s; a file with neither is refused."""
        source = found.source
        text = found.text()
        data = parse_toml(text, source)
        dependencies = parse_pyproject_dependencies(text, source)
        if "dependencies" in _poetry_table(data):
            return Declared(
                format=self,
                source=source,
                direct=tuple(poetry.requirement_lines(data, (), source)),
                groups=tuple(poetry.group_lines(data, source).items()),
                indexes=poetry_sources(data),
            )
        if dependencies is None:
            raise ProjectError(f"{source} declares no [project] or [tool.poetry] dependencies")
        for number, line in enumerate(dependencies, start=1):
            list(parse_requirements(line, f"{source} dependency {number}"))
        return Declared(
            format=self,
            source=source,
            direct=tuple(dependencies),
            groups=tuple(pyproject_groups(data, source).items()),
            indexes=uv_indexes(data),
        )

    def requires_python(self, declared: Declared) -> str | None:
        """None: without a lock, the base image follows the Django version alone."""
        return None

    def select(self, declared: Declared, target: Target, groups: Collection[str]) -> Selection:
        """The dependencies and the groups asked for, left to the resolver."""
        return unresolved(declared, groups)


FORMAT = PyprojectToml()


def _poetry_table(data: Mapping[str, Any]) -> Mapping[str, Any]:
    poetry: Mapping[str, Any] = data.get("tool", {}).get("poetry", {})
    return poetry


def parse_pyproject_dependencies(text: str, source: str) -> list[str] | None:
    """Return ``[project.dependencies]`` from pyproject.toml text, or None if absent."""
    dependencies = parse_toml(text, source).get("project", {}).get("dependencies")
    if dependencies is None:
        return None
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise ProjectError(f"{source}: [project] dependencies must be a list of strings")
    return dependencies


def pyproject_groups(data: Mapping[str, Any], source: str) -> dict[str, tuple[str, ...]]:
    """``[project.optional-dependencies]`` and ``[dependency-groups]`` (PEP 735), by name."""
    groups: dict[str, tuple[str, ...]] = {}
    for name, lines in data.get("project", {}).get("optional-dependencies", {}).items():
        groups[name] = tuple(lines)
    declared = data.get("dependency-groups", {})

    def expand(name: str, seen: tuple[str, ...]) -> list[str]:
        if name in seen:
            raise ProjectError(f"{source}: dependency group {name!r} includes itself")
        lines: list[str] = []
        for item in declared.get(name, []):
            if isinstance(item, str):
                lines.append(item)
            elif isinstance(item, dict) and "include-group" in item:
                lines += expand(item["include-group"], (*seen, name))
        return lines

    for name in declared:
        groups.setdefault(name, tuple(expand(name, ())))
    return groups
