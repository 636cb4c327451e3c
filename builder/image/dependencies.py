"""Find and read a project's dependencies as the project declares them.

The order of preference is: a lock (``uv.lock``, ``poetry.lock``, ``Pipfile.lock``,
``pylock.toml``, beside manage.py or at the project root), then ``requirements*.txt``,
then ``[project] dependencies`` or ``[tool.poetry.dependencies]`` in pyproject.toml. A
file named with ``--requirements`` or ``[tool.kitbuild] requirements`` comes first.

:func:`read_declared` reads the files into a :class:`Declared`. Which packages the image
gets depends on the image's Python, known only later, so :meth:`Declared.select` takes
the target: a lock (or a requirements file with ``--hash`` lines) gives exact pins, with
markers evaluated for the target (:mod:`builder.image.locks`); any other source gives
requirement lines that the resolver turns into pins for the target.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from builder.errors import LockError, ProjectError
from builder.image import locks

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator, Mapping, Sequence

LOCKS = ("uv.lock", "poetry.lock", "Pipfile.lock", "pylock.toml")


@dataclasses.dataclass(frozen=True)
class Selection:
    """What the image installs: exact pins (from a lock), or requirements still to resolve."""

    pins: tuple[locks.Pin, ...] = ()
    unresolved: tuple[str, ...] = ()

    @property
    def locked(self) -> bool:
        """Whether the versions (and hashes) are fixed by the project."""
        return bool(self.pins) and not self.unresolved


@dataclasses.dataclass(frozen=True)
class Declared:
    """A project's dependency files, read but not yet evaluated for a target.

    Attributes:
        kind: which reader applies: one of :data:`LOCKS`, "requirements", "pyproject"
            or "poetry" (``[tool.poetry]`` without a lock).
        source: the file read, relative to the project's root.
        direct: the requirements the project names itself (PEP 508), for the Django
            version and the drivers it brings; for a lock, its locked ``name==version``.
        notes: what kitbuild did differently from the file, said once at build time.

    """

    kind: str
    source: str
    direct: tuple[str, ...]
    notes: tuple[str, ...] = ()
    text: str = ""  # the lock's text
    manifest: str | None = None  # the manifest beside a lock, relative to the root
    manifest_text: str = ""
    hashed: tuple[tuple[str, tuple[str, ...], str], ...] = ()  # requirements with --hash
    groups: tuple[tuple[str, tuple[str, ...]], ...] = ()  # unlocked optional groups

    def requires_python(self) -> SpecifierSet | None:
        """The Python versions the project (or its lock) allows, when it says."""
        text: str | None = None
        if self.kind in ("uv.lock", "pylock.toml"):
            text = _toml(self.text, self.source).get("requires-python")
        elif self.kind == "poetry.lock":
            python = _toml(self.text, self.source).get("metadata", {}).get("python-versions")
            text = str(locks.poetry_constraint(python)) if python else None
        elif self.kind == "Pipfile.lock":
            requires = _json(self.text, self.source).get("_meta", {}).get("requires", {})
            version = requires.get("python_full_version") or requires.get("python_version")
            text = (
                f"=={version}.*"
                if version and version.count(".") < 2
                else (f"=={version}" if version else None)
            )
        try:
            return SpecifierSet(text) if text else None
        except InvalidSpecifier:
            raise ProjectError(f"{self.source}: cannot read its Python range {text!r}") from None

    def select(self, target: locks.Target, groups: Collection[str] = ()) -> Selection:
        """The pins (or unresolved requirements) for the target, with the optional groups."""
        reader = _SELECTORS.get(self.kind)
        if reader is not None:
            return Selection(pins=tuple(reader(self, target, groups)))
        if self.hashed:
            if groups:
                raise ProjectError(
                    f"{self.source} has no groups; remove --group {next(iter(groups))!r}"
                )
            return Selection(pins=tuple(locks.parse_hashed_requirements(self.hashed, target)))
        table = dict(self.groups)
        missing = [g for g in groups if g not in table]
        if missing:
            known = ", ".join(table) or "none"
            raise ProjectError(
                f"{self.source} has no group or extra {missing[0]!r}; it has: {known}"
            )
        extra = [line for group in groups for line in table[group]]
        return Selection(unresolved=tuple(dict.fromkeys([*self.direct, *extra])))


# --------------------------------------------------------------------------- locks


def _uv(declared: Declared, target: locks.Target, groups: Collection[str]) -> list[locks.Pin]:
    pins = locks.parse_uv_lock(declared.text, target, groups, declared.source)
    if declared.manifest is not None:
        project = _toml(declared.manifest_text, declared.manifest).get("project", {})
        recorded = {
            canonicalize_name(Requirement(line).name)
            for line in locks.uv_manifest_requirements(declared.text, declared.source)
        }
        for line in project.get("dependencies", []):
            name = canonicalize_name(_requirement(line, declared.manifest).name)
            if name not in recorded:
                raise LockError(
                    f"{declared.source} does not match {declared.manifest}: {name} is not in "
                    "the lock; re-lock the project (uv lock)"
                )
        direct = _pep508_direct(project.get("dependencies", []), declared.manifest)
        locks.check_manifest(pins, direct, target, declared.source, declared.manifest)
    return pins


def _poetry(declared: Declared, target: locks.Target, groups: Collection[str]) -> list[locks.Pin]:
    manifest = declared.manifest or "pyproject.toml"
    roots = poetry_roots(_toml(declared.manifest_text, manifest), groups, manifest)
    pins = locks.parse_poetry_lock(declared.text, roots, target, declared.source, manifest)
    direct = [locks.Direct(r.name, r.specifier, _poetry_marker(r)) for r in roots]
    locks.check_manifest(pins, direct, target, declared.source, manifest)
    return pins


def _pipfile(declared: Declared, target: locks.Target, groups: Collection[str]) -> list[locks.Pin]:
    pins = locks.parse_pipfile_lock(declared.text, target, list(groups), declared.source)
    if declared.manifest is not None:
        pipfile = _toml(declared.manifest_text, declared.manifest)
        sections = ["packages", *("dev-packages" if g in ("dev", "develop") else g for g in groups)]
        direct = [
            item
            for section in sections
            for item in _pipfile_direct(pipfile.get(section, {}), declared.manifest)
        ]
        locks.check_manifest(pins, direct, target, declared.source, declared.manifest)
    return pins


def _pylock(declared: Declared, target: locks.Target, groups: Collection[str]) -> list[locks.Pin]:
    pins = locks.parse_pylock(declared.text, target, groups, declared.source)
    if declared.manifest is not None:
        project = _toml(declared.manifest_text, declared.manifest).get("project", {})
        direct = _pep508_direct(project.get("dependencies", []), declared.manifest)
        locks.check_manifest(pins, direct, target, declared.source, declared.manifest)
    return pins


_SELECTORS = {
    "uv.lock": _uv,
    "poetry.lock": _poetry,
    "Pipfile.lock": _pipfile,
    "pylock.toml": _pylock,
}


def _pep508_direct(lines: Sequence[str], source: str) -> list[locks.Direct]:
    found = []
    for line in lines:
        requirement = _requirement(line, source)
        found.append(
            locks.Direct(
                canonicalize_name(requirement.name), requirement.specifier, requirement.marker
            )
        )
    return found


def _pipfile_direct(table: Mapping[str, Any], source: str) -> list[locks.Direct]:
    found = []
    for name, value in table.items():
        spec = {"version": value} if isinstance(value, str) else dict(value)
        version = str(spec.get("version", "*")).strip()
        marker = spec.get("markers")
        found.append(
            locks.Direct(
                canonicalize_name(name),
                SpecifierSet("" if version == "*" else version),
                Marker(marker) if marker else None,
            )
        )
    return found


def poetry_roots(
    pyproject: Mapping[str, Any], groups: Collection[str], source: str
) -> list[locks.PoetryDependency]:
    """What a Poetry project asks for: main dependencies, the groups and extras named."""
    poetry = pyproject.get("tool", {}).get("poetry", {})
    project = pyproject.get("project", {})
    main = locks.poetry_dependencies(poetry.get("dependencies", {}), source)
    main += [_as_poetry(line, source) for line in project.get("dependencies", [])]
    tables: dict[str, list[locks.PoetryDependency]] = {}
    for name, group in poetry.get("group", {}).items():
        tables[name] = locks.poetry_dependencies(group.get("dependencies", {}), source)
    if "dev-dependencies" in poetry:
        tables.setdefault("dev", locks.poetry_dependencies(poetry["dev-dependencies"], source))
    for name, lines in project.get("optional-dependencies", {}).items():
        tables[name] = [_as_poetry(line, source) for line in lines]
    extras = {
        name: set(map(canonicalize_name, items)) for name, items in poetry.get("extras", {}).items()
    }
    unknown = [g for g in groups if g not in tables and g not in extras]
    if unknown:
        known = ", ".join(sorted({*tables, *extras})) or "none"
        raise ProjectError(f"{source} has no group or extra {unknown[0]!r}; it has: {known}")
    wanted = {name for group in groups for name in extras.get(group, ())}
    roots = [d for d in main if not d.optional or d.name in wanted]
    for group in groups:
        roots += tables.get(group, [])
    return roots


def _as_poetry(line: str, source: str) -> locks.PoetryDependency:
    requirement = _requirement(line, source)
    return locks.PoetryDependency(
        name=canonicalize_name(requirement.name),
        specifier=requirement.specifier,
        marker=str(requirement.marker) if requirement.marker else None,
        python=None,
        extras=tuple(sorted(requirement.extras)),
        optional=False,
        local=requirement.url,
    )


def _poetry_marker(dependency: locks.PoetryDependency) -> Marker | None:
    parts = [f"({dependency.marker})"] if dependency.marker else []
    if dependency.python:
        for item in locks.poetry_constraint(dependency.python):
            parts.append(f"python_full_version {item.operator} '{item.version}'")
    return Marker(" and ".join(parts)) if parts else None


def poetry_requirement_lines(
    pyproject: Mapping[str, Any], groups: Collection[str], source: str
) -> list[str]:
    """A Poetry project without a lock: its dependencies as PEP 508 lines, to resolve."""
    lines = []
    for dependency in poetry_roots(pyproject, groups, source):
        if dependency.local:
            raise ProjectError(
                f"{source}: {dependency.name} comes from {dependency.local}, not a package "
                "index; kitbuild installs packages by name and version only"
            )
        extras = f"[{','.join(dependency.extras)}]" if dependency.extras else ""
        marker = _poetry_marker(dependency)
        lines.append(
            f"{dependency.name}{extras}{dependency.specifier}" + (f"; {marker}" if marker else "")
        )
    return lines


# --------------------------------------------------------------------------- requirements files


@dataclasses.dataclass(frozen=True)
class RequirementLine:
    """One requirement (with its --hash values), an include, or an index option."""

    requirement: str | None = None
    include: str | None = None
    hashes: tuple[str, ...] = ()
    index: str | None = None  # -i / --index-url / --extra-index-url, as written
    number: int = 0


_INDEX = re.compile(r"^(?:-i|--index-url|--extra-index-url)(?:\s*=?\s*|\s+)(\S+)")


def parse_requirements(text: str, source: str) -> Iterator[RequirementLine]:
    """Yield the requirements (with hashes), -r includes and index options of a file.

    Editable or path requirements cannot be fetched for an image: they raise ProjectError.
    Other pip options (--find-links, --only-binary ...) do not change what is installed.
    """
    for number, raw in enumerate(_logical_lines(text), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line:
            continue
        include = re.match(r"^(?:-r|--requirement|-c|--constraint)\s*=?\s*(\S+)", line)
        if include:
            if line.startswith(("-r", "--requirement")):
                yield RequirementLine(include=include.group(1), number=number)
            continue
        index = _INDEX.match(line)
        if index:
            yield RequirementLine(index=line, number=number)
            continue
        if line.startswith("-"):
            if line.startswith(("-e", "--editable")):
                raise ProjectError(
                    f"{source}:{number}: editable requirement {line!r} cannot go into an "
                    "image; list the package by name and version instead"
                )
            continue  # --find-links, --only-binary ...: nothing to install
        hashes = tuple(re.findall(r"--hash[=\s]\s*(\S+)", line))
        requirement = line.split(" --", 1)[0].strip()  # drop per-requirement options
        try:
            parsed = Requirement(requirement)
        except InvalidRequirement as error:
            raise ProjectError(
                f"{source}:{number}: cannot parse requirement {requirement!r}: "
                f"{str(error).splitlines()[0]}"
            ) from None
        if parsed.url:
            raise ProjectError(
                f"{source}:{number}: requirement {requirement!r} points at a URL or path; "
                "kitbuild resolves packages by name and version only"
            )
        yield RequirementLine(requirement=requirement, hashes=hashes, number=number)


def _logical_lines(text: str) -> Iterator[str]:
    buffer = ""
    for line in text.splitlines():
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        yield buffer + line
        buffer = ""
    if buffer:
        yield buffer


def parse_pyproject_dependencies(text: str, source: str) -> list[str] | None:
    """Return ``[project.dependencies]`` from pyproject.toml text, or None if absent."""
    dependencies = _toml(text, source).get("project", {}).get("dependencies")
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


# --------------------------------------------------------------------------- reading


def read_declared(root: Path, app_dir: Path, given: Path | None = None) -> Declared:
    """Find the project's dependency declaration, in the order of preference, and read it."""
    directories = list(dict.fromkeys([app_dir, root]))
    if given is not None:
        path = given if given.is_absolute() else root / given
        if not path.is_file():
            raise ProjectError(f"requirements file {given} not found")
        return _read_file(path, root)
    for name in LOCKS:
        for directory in directories:
            if (directory / name).is_file():
                return _read_file(directory / name, root)
    for directory in directories:
        if (directory / "requirements.txt").is_file():
            return _read_file(directory / "requirements.txt", root)
        variants = sorted(directory.glob("requirements*.txt"))
        if len(variants) == 1:
            return _read_file(variants[0], root)
        if variants:
            listed = ", ".join(_relative(p, root) for p in variants)
            raise ProjectError(
                f"several requirements files ({listed}); name one with --requirements FILE "
                "or [tool.kitbuild] requirements"
            )
    for directory in directories:
        path = directory / "pyproject.toml"
        if path.is_file():
            declared = _read_pyproject(path, root)
            if declared is not None:
                return declared
    raise ProjectError(
        f"{root}: no requirements.txt and no [project] dependencies in pyproject.toml; "
        "list the project's packages (at least Django) in requirements.txt"
    )


def _read_file(path: Path, root: Path) -> Declared:
    source = _relative(path, root)
    if path.name in LOCKS or re.fullmatch(r"pylock\.[^.]+\.toml", path.name):
        return _read_lock(path, root)
    if path.name == "pyproject.toml":
        declared = _read_pyproject(path, root)
        if declared is None:
            raise ProjectError(f"{source} declares no [project] or [tool.poetry] dependencies")
        return declared
    return _read_requirements_file(path, root)


def _read_lock(path: Path, root: Path) -> Declared:
    kind = "pylock.toml" if path.name.startswith("pylock.") else path.name
    manifest_name = {"Pipfile.lock": "Pipfile"}.get(kind, "pyproject.toml")
    manifest = path.parent / manifest_name
    if kind in ("uv.lock", "poetry.lock") and not manifest.is_file():
        raise ProjectError(f"{_relative(path, root)} has no {manifest_name} beside it")
    text = read_text(path)
    declared = Declared(
        kind=kind,
        source=_relative(path, root),
        direct=(),
        text=text,
        manifest=_relative(manifest, root) if manifest.is_file() else None,
        manifest_text=read_text(manifest) if manifest.is_file() else "",
    )
    return dataclasses.replace(declared, direct=tuple(_lock_names(declared)))


def _lock_names(declared: Declared) -> list[str]:
    """Every ``name==version`` a lock holds, whatever the markers (for drivers and Django)."""
    if declared.kind == "Pipfile.lock":
        data = _json(declared.text, declared.source)
        return [
            f"{name}{entry['version']}"
            for name, entry in data.get("default", {}).items()
            if str(entry.get("version", "")).startswith("==")
        ]
    key = "packages" if declared.kind == "pylock.toml" else "package"
    return [
        f"{p['name']}=={p['version']}"
        for p in _toml(declared.text, declared.source).get(key, [])
        if "version" in p and not _is_root(p)
    ]


def _is_root(package: Mapping[str, Any]) -> bool:
    source = package.get("source", {})
    return isinstance(source, dict) and ("editable" in source or "virtual" in source)


def _read_requirements_file(path: Path, root: Path) -> Declared:
    lines: list[RequirementLine] = []
    sources: list[str] = []
    _expand(path, root, set(), lines, sources)
    notes = tuple(
        f"kitbuild: ignoring {item.index!r} in {where}; packages come from your configured index"
        for item, where in zip(lines, sources, strict=True)
        if item.index
    )
    requirements = [(i, w) for i, w in zip(lines, sources, strict=True) if i.requirement]
    direct = tuple(str(item.requirement) for item, _ in requirements)
    hashed: tuple[tuple[str, tuple[str, ...], str], ...] = ()
    if any(item.hashes for item, _ in requirements):
        hashed = tuple(
            (str(item.requirement), item.hashes, f"{where}:{item.number}")
            for item, where in requirements
        )
    return Declared(
        kind="requirements", source=_relative(path, root), direct=direct, notes=notes, hashed=hashed
    )


def _expand(
    path: Path, root: Path, seen: set[Path], lines: list[RequirementLine], sources: list[str]
) -> None:
    resolved = path.resolve()
    if resolved in seen:
        return
    seen.add(resolved)
    where = _relative(path, root)
    for item in parse_requirements(read_text(path), where):
        if item.include is not None:
            included = path.parent / item.include
            if not included.is_file():
                raise ProjectError(f"{where} includes {item.include}, which does not exist")
            _expand(included, root, seen, lines, sources)
        else:
            lines.append(item)
            sources.append(where)


def _read_pyproject(path: Path, root: Path) -> Declared | None:
    source = _relative(path, root)
    text = read_text(path)
    data = _toml(text, source)
    dependencies = parse_pyproject_dependencies(text, source)
    poetry = data.get("tool", {}).get("poetry", {})
    if "dependencies" in poetry:
        return Declared(
            kind="poetry",
            source=source,
            direct=tuple(poetry_requirement_lines(data, (), source)),
            groups=tuple(_poetry_group_lines(data, source).items()),
        )
    if dependencies is None:
        return None
    for number, line in enumerate(dependencies, start=1):
        list(parse_requirements(line, f"{source} dependency {number}"))
    return Declared(
        kind="pyproject",
        source=source,
        direct=tuple(dependencies),
        groups=tuple(pyproject_groups(data, source).items()),
    )


def _poetry_group_lines(data: Mapping[str, Any], source: str) -> dict[str, tuple[str, ...]]:
    poetry = data.get("tool", {}).get("poetry", {})
    names = [*poetry.get("group", {}), *poetry.get("extras", {})]
    names += ["dev"] if "dev-dependencies" in poetry else []
    names += list(data.get("project", {}).get("optional-dependencies", {}))
    main = set(poetry_requirement_lines(data, (), source))
    return {
        name: tuple(
            line for line in poetry_requirement_lines(data, [name], source) if line not in main
        )
        for name in dict.fromkeys(names)
    }


def _requirement(line: str, source: str) -> Requirement:
    try:
        return Requirement(line)
    except InvalidRequirement as error:
        raise ProjectError(f"{source}: cannot parse requirement {line!r}: {error}") from None


def _toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ProjectError(f"{source} is not valid TOML: {error}") from None


def _json(text: str, source: str) -> dict[str, Any]:
    import json  # noqa: PLC0415 (only Pipfile.lock is JSON)

    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ProjectError(f"{source} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ProjectError(f"{source}: not a JSON object; is this Pipenv's lock?")
    return data


def read_text(path: Path) -> str:
    """A project file's text, or ProjectError saying why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise ProjectError(f"cannot read {path}: {reason}") from None


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)
