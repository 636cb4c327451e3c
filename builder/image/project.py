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
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from builder.errors import ProjectError
from builder.image.dependencies import (
    Declared,
    RequirementLine,
    parse_pyproject_dependencies,
    parse_requirements,
    read_declared,
    read_text,
)

# Reading requirement files moved to builder.image.dependencies; these stay importable here.
__all__ = [
    "MYSQL_DRIVERS",
    "SKIPPED_DIRS",
    "Project",
    "ProjectError",
    "RequirementLine",
    "SettingsSource",
    "find_project_dirs",
    "inspect_project",
    "parse_pyproject_dependencies",
    "parse_requirements",
    "parse_settings_module",
    "parse_settings_source",
]

if TYPE_CHECKING:
    from collections.abc import Iterable

#: Directories never searched for manage.py (and never copied into the image).
SKIPPED_DIRS = frozenset(
    {".git", ".hg", ".venv", "venv", "env", "node_modules", "__pycache__", ".tox", ".nox"}
)
MYSQL_DRIVERS = frozenset({"mysqlclient", "pymysql", "mysql-connector-python"})


@dataclasses.dataclass(frozen=True)
class Project:
    """What kitbuild needs to know about a Django project.

    Attributes:
        root: the directory the user named; all of it goes into the image.
        app_dir: the directory holding manage.py, relative to ``root`` ("." when the same).
        name: the project's name (the root directory's name), used for the default tag.
        settings_module: dotted path of the settings module.
        wsgi_application: dotted path of the WSGI callable; "" when the project has none
            (Django's own WSGI handler then serves it).
        static_root: whether the settings set STATIC_ROOT (so collectstatic runs at build).
        requirements: the project's requirement lines, -r includes expanded (for a lock,
            its ``name==version`` lines).
        requirements_source: the file they came from, relative to ``root``.
        django_requirement: the Django requirement as written, e.g. "Django>=5.2,<5.3".
        dependencies: the dependency files as read, evaluated for the image's Python later.
        code_dir: where the settings' top package lives, relative to ``app_dir``: "." or,
            in a src layout whose manage.py adds src/ to sys.path itself, "src". The image
            puts it on PYTHONPATH, since gunicorn and the build steps never run manage.py.

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
    dependencies: Declared
    code_dir: str = "."

    @property
    def code_path(self) -> str:
        """``code_dir`` relative to the project's root, e.g. "src" or "backend/src"."""
        return (PurePosixPath(self.app_dir) / self.code_dir).as_posix()

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

# os.environ.setdefault("DJANGO_SETTINGS_MODULE", "x") or os.environ["DJANGO_SETTINGS_MODULE"] = "x"
_SETTINGS_MODULE = re.compile(
    r"""os\.environ(?:\.setdefault\(\s*['"]DJANGO_SETTINGS_MODULE['"]\s*,\s*"""
    r"""|\[\s*['"]DJANGO_SETTINGS_MODULE['"]\s*\]\s*=\s*)['"]([\w.]+)['"]"""
)


def parse_settings_module(source: str) -> str | None:
    """The settings module a manage.py (or WSGI module) defaults to, or assigns."""
    match = _SETTINGS_MODULE.search(source)
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


# --------------------------------------------------------------------------- reading


def inspect_project(
    path: Path, *, settings: str | None = None, requirements: Path | None = None
) -> Project:
    """Inspect the Django project in ``path``; raise ProjectError saying what is wrong."""
    root, app_dir = find_project_dirs(path)
    manage_py = app_dir / "manage.py"

    settings_module = settings or parse_settings_module(read_text(manage_py))
    if not settings_module:
        raise ProjectError(
            f"{manage_py}: no DJANGO_SETTINGS_MODULE default found; pass --settings MODULE"
        )
    wsgi, static_root = _read_settings(app_dir, settings_module)
    code_dir = _code_dir(app_dir, settings_module)

    declared = read_declared(root, app_dir, requirements)
    requirement_lines, source = list(declared.direct), declared.source
    names: dict[str, str] = {}
    for line in requirement_lines:
        names.setdefault(canonicalize_name(Requirement(line).name), line)
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
        dependencies=declared,
        code_dir=code_dir,
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


def _find_manage_py(root: Path) -> Path:
    top = root / "manage.py"
    if top.is_file():
        if _settings_beside(top):
            return top
        # A root manage.py whose settings are not beside it (a wrapper for a platform),
        # with the real one in a subdirectory: the one whose settings are there.
        nested = [path for path in _walk_for("manage.py", root, depth=3) if _settings_beside(path)]
        return nested[0] if len(nested) == 1 else top
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


def _settings_beside(manage_py: Path) -> bool:
    """manage.py's settings module is a file beside it (or under src/ beside it)."""
    try:
        module = parse_settings_module(manage_py.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return False
    directory = manage_py.parent
    return module is not None and _module_file([directory, directory / "src"], module) is not None


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


def _code_dir(app_dir: Path, settings_module: str) -> str:
    """Where the settings' package is: "." beside manage.py, or "src" in a src layout."""
    if _module_file([app_dir], settings_module) is None and _module_file(
        [app_dir / "src"], settings_module
    ):
        return "src"
    return "."


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
            found = parse_settings_source(read_text(path), module)
        except SyntaxError as error:
            raise ProjectError(f"{path}:{error.lineno}: syntax error in settings") from None
        wsgi = wsgi or found.wsgi_application  # the module that imports wins over its bases
        static_root = static_root or found.static_root
        pending.extend(found.star_imports)
    if wsgi is None:
        package = settings_module.split(".", maxsplit=1)[0]
        # No WSGI module at all (an ASGI-only project): Django's own WSGI handler serves it,
        # as runserver would ("" in KIT_WSGI_APPLICATION; kitbuild_runtime.wsgi).
        has_module = _module_file(search_roots, f"{package}.wsgi") is not None
        wsgi = f"{package}.wsgi.application" if has_module else ""
    return wsgi, static_root


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)
