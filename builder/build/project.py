"""Inspect a Django project from its files, never importing its code.

Reading (the ``read_*`` and ``inspect_project`` functions) is kept apart from parsing
(the ``parse_*`` functions, which take source text and return values). The result is a
frozen :class:`Project` that the rest of kitbuild uses to choose a base image, resolve
dependencies and render the Dockerfile.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path
from typing import TYPE_CHECKING

import tomllib
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from builder.errors import KitError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

#: Directories never searched for manage.py (and never copied into the image).
SKIPPED_DIRS = frozenset(
    {".git", ".hg", ".venv", "venv", "env", "node_modules", "__pycache__", ".tox", ".nox"}
)
MYSQL_DRIVERS = frozenset({"mysqlclient", "pymysql", "mysql-connector-python"})


class ProjectError(KitError):
    """The directory is not a Django project kitbuild can build."""


@dataclasses.dataclass(frozen=True)
class Project:
    """What kitbuild needs to know about a Django project.

    Attributes:
        root: the directory the user named; all of it goes into the image.
        app_dir: the directory holding manage.py, relative to ``root`` ("." when the same).
        name: the project's name (the root directory's name), used for the default tag.
        settings_module: dotted path of the settings module.
        wsgi_application: dotted path of the WSGI callable.
        static_root: whether the settings set STATIC_ROOT (so collectstatic runs at build).
        requirements: the project's requirement lines, -r includes expanded.
        requirements_source: the file they came from, relative to ``root``.
        django_requirement: the Django requirement as written, e.g. "Django>=5.2,<5.3".

    """

    root: Path
    app_dir: str
    name: str
    settings_module: str
    wsgi_application: str
    static_root: bool
    requirements: tuple[str, ...]
    requirements_source: str
    django_requirement: str

    @property
    def requirement_names(self) -> frozenset[str]:
        """Canonical names of the project's requirements."""
        return frozenset(canonicalize_name(Requirement(line).name) for line in self.requirements)

    @property
    def mysql_driver(self) -> str | None:
        """The MySQL driver the project already requires, if any."""
        found = sorted(self.requirement_names & MYSQL_DRIVERS)
        return found[0] if found else None


# --------------------------------------------------------------------------- parsing

_SETDEFAULT = re.compile(
    r"""os\.environ\.setdefault\(\s*['"]DJANGO_SETTINGS_MODULE['"]\s*,\s*['"]([\w.]+)['"]"""
)


def parse_settings_module(manage_py: str) -> str | None:
    """Find the DJANGO_SETTINGS_MODULE default that manage.py sets."""
    match = _SETDEFAULT.search(manage_py)
    return match.group(1) if match else None


@dataclasses.dataclass(frozen=True)
class SettingsSource:
    """The settings names kitbuild cares about, as found in one settings file."""

    wsgi_application: str | None
    static_root: bool
    star_imports: tuple[str, ...]  # modules pulled in with `from X import *`, as written


def parse_settings_source(source: str, module: str) -> SettingsSource:
    """Read WSGI_APPLICATION, STATIC_ROOT and star imports from a settings file's source.

    Only top-level statements count. Relative star imports are resolved against
    ``module`` (the dotted name of the file being parsed).
    """
    tree = ast.parse(source)
    wsgi: str | None = None
    static_root = False
    star_imports: list[str] = []
    for node in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        elif isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            star_imports.append(_absolute_module(module, node.module, node.level))
        names = {target.id for target in targets if isinstance(target, ast.Name)}
        if "WSGI_APPLICATION" in names and isinstance(value, ast.Constant):
            wsgi = str(value.value)
        if "STATIC_ROOT" in names:
            static_root = not (isinstance(value, ast.Constant) and value.value in (None, ""))
    return SettingsSource(wsgi, static_root, tuple(star_imports))


def _absolute_module(current: str, name: str | None, level: int) -> str:
    if level == 0:
        return name or ""
    # The settings file is a module, so level 1 means its package.
    package = current.split(".")[:-level]
    return ".".join([*package, *([name] if name else [])])


@dataclasses.dataclass(frozen=True)
class RequirementLine:
    """One requirement, or an include of another requirements file."""

    requirement: str | None = None
    include: str | None = None


def parse_requirements(text: str, source: str) -> Iterator[RequirementLine]:
    """Yield the requirements and -r/-c includes of a requirements file.

    Options pip understands (--hash, --index-url ...) are left to pip. Editable or
    path requirements cannot be fetched for an image: they raise ProjectError.
    """
    for number, raw in enumerate(_logical_lines(text), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line:
            continue
        include = re.match(r"^(?:-r|--requirement|-c|--constraint)\s*=?\s*(\S+)", line)
        if include:
            if line.startswith(("-r", "--requirement")):
                yield RequirementLine(include=include.group(1))
            continue
        if line.startswith("-"):
            if line.startswith(("-e", "--editable")):
                raise ProjectError(
                    f"{source}:{number}: editable requirement {line!r} cannot go into an "
                    "image; list the package by name and version instead"
                )
            continue  # --index-url, --hash on its own line, --find-links ...: pip's business
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
        yield RequirementLine(requirement=requirement)


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
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ProjectError(f"{source} is not valid TOML: {error}") from None
    dependencies = data.get("project", {}).get("dependencies")
    if dependencies is None:
        return None
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise ProjectError(f"{source}: [project] dependencies must be a list of strings")
    return dependencies


# --------------------------------------------------------------------------- reading


def inspect_project(
    path: Path, *, settings: str | None = None, requirements: Path | None = None
) -> Project:
    """Inspect the Django project in ``path``; raise ProjectError saying what is wrong."""
    root, app_dir = find_project_dirs(path)
    manage_py = app_dir / "manage.py"

    settings_module = settings or parse_settings_module(_read_text(manage_py))
    if not settings_module:
        raise ProjectError(
            f"{manage_py}: no DJANGO_SETTINGS_MODULE default found; pass --settings MODULE"
        )
    wsgi, static_root = _read_settings(app_dir, settings_module)

    requirement_lines, source = _read_requirements(root, app_dir, requirements)
    names: dict[str, str] = {
        canonicalize_name(Requirement(line).name): line for line in requirement_lines
    }
    if "django" not in names:
        raise ProjectError(f"{source} does not list Django; add a line such as Django>=5.2,<5.3")
    return Project(
        root=root,
        app_dir=app_dir.relative_to(root).as_posix(),
        name=root.name,
        settings_module=settings_module,
        wsgi_application=wsgi,
        static_root=static_root,
        requirements=tuple(requirement_lines),
        requirements_source=source,
        django_requirement=names["django"],
    )


def find_project_dirs(path: Path) -> tuple[Path, Path]:
    """The project's root (absolute) and the directory holding its manage.py."""
    root = Path(path)
    if not root.exists():
        raise ProjectError(f"{root}: no such directory")
    if not root.is_dir():
        raise ProjectError(f"{root}: not a directory; give the Django project's directory")
    root = root.resolve()
    return root, _find_manage_py(root).parent


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise ProjectError(f"cannot read {path}: {reason}") from None


def _find_manage_py(root: Path) -> Path:
    if (root / "manage.py").is_file():
        return root / "manage.py"
    found = sorted(_walk_for("manage.py", root, depth=3))
    if len(found) == 1:
        return found[0]
    if not found:
        raise ProjectError(
            f"{root} is not a Django project: no manage.py in it or in its subdirectories"
        )
    listed = ", ".join(str(p.relative_to(root)) for p in found[:4])
    raise ProjectError(
        f"{root} holds several Django projects ({listed}); give the directory of one of them"
    )


def _walk_for(filename: str, directory: Path, depth: int) -> Iterable[Path]:
    if depth == 0:
        return
    for child in directory.iterdir():
        if child.is_dir() and child.name not in SKIPPED_DIRS and not child.is_symlink():
            if (child / filename).is_file():
                yield child / filename
            else:
                yield from _walk_for(filename, child, depth - 1)


def _module_file(search_roots: Iterable[Path], module: str) -> Path | None:
    parts = module.split(".")
    for base in search_roots:
        for candidate in (
            base.joinpath(*parts).with_suffix(".py"),
            base.joinpath(*parts, "__init__.py"),
        ):
            if candidate.is_file():
                return candidate
    return None


def _read_settings(app_dir: Path, settings_module: str) -> tuple[str, bool]:
    """Follow the settings module and its star imports for WSGI_APPLICATION and STATIC_ROOT."""
    search_roots = [app_dir, app_dir / "src"]
    first = _module_file(search_roots, settings_module)
    if first is None:
        expected = settings_module.replace(".", "/") + ".py"
        raise ProjectError(
            f"settings module {settings_module!r} not found (no {expected} under {app_dir}); "
            "pass --settings MODULE"
        )
    wsgi: str | None = None
    static_root = False
    pending, seen = [settings_module], set()
    while pending:
        module = pending.pop(0)
        path = _module_file(search_roots, module)
        if module in seen or path is None:
            continue  # a star import from outside the project (a library's defaults)
        seen.add(module)
        try:
            found = parse_settings_source(_read_text(path), module)
        except SyntaxError as error:
            raise ProjectError(f"{path}:{error.lineno}: syntax error in settings") from None
        wsgi = wsgi or found.wsgi_application  # the module that imports wins over its bases
        static_root = static_root or found.static_root
        pending.extend(found.star_imports)
    if wsgi is None:
        package = settings_module.split(".", maxsplit=1)[0]
        if _module_file(search_roots, f"{package}.wsgi") is None:
            raise ProjectError(
                f"no WSGI_APPLICATION in {settings_module} and no {package}/wsgi.py; "
                "set WSGI_APPLICATION in the settings"
            )
        wsgi = f"{package}.wsgi.application"
    return wsgi, static_root


def _read_requirements(root: Path, app_dir: Path, given: Path | None) -> tuple[list[str], str]:
    if given is not None:
        path = given if given.is_absolute() else root / given
        if not path.is_file():
            raise ProjectError(f"requirements file {given} not found")
        return _expand_requirements(path, root, set()), _relative(path, root)
    for directory in dict.fromkeys([app_dir, root]):
        if (directory / "requirements.txt").is_file():
            path = directory / "requirements.txt"
            return _expand_requirements(path, root, set()), _relative(path, root)
        if (directory / "pyproject.toml").is_file():
            path = directory / "pyproject.toml"
            dependencies = parse_pyproject_dependencies(_read_text(path), _relative(path, root))
            if dependencies is not None:
                for number, line in enumerate(dependencies, start=1):
                    list(parse_requirements(line, f"{_relative(path, root)} dependency {number}"))
                return dependencies, _relative(path, root)
    raise ProjectError(
        f"{root}: no requirements.txt and no [project] dependencies in pyproject.toml; "
        "list the project's packages (at least Django) in requirements.txt"
    )


def _expand_requirements(path: Path, root: Path, seen: set[Path]) -> list[str]:
    resolved = path.resolve()
    if resolved in seen:
        return []
    seen.add(resolved)
    lines: list[str] = []
    for item in parse_requirements(_read_text(path), _relative(path, root)):
        if item.include is not None:
            included = path.parent / item.include
            if not included.is_file():
                raise ProjectError(
                    f"{_relative(path, root)} includes {item.include}, which does not exist"
                )
            lines.extend(_expand_requirements(included, root, seen))
        elif item.requirement is not None:
            lines.append(item.requirement)
    return lines


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)
