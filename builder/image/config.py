"""A project's own settings for kitbuild: the ``[tool.kitbuild]`` table and the build's flags.

Both say the same things in the same words, so the flags are parsed into the same
:class:`KitConfig` and laid over the table (:meth:`KitConfig.overridden_by`). Reading the
file (:func:`read_config`) is kept apart from parsing its text (:func:`parse_tool_table`).
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from builder.errors import BuildConfigError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


@dataclasses.dataclass(frozen=True)
class KitConfig:
    """What a project tells kitbuild about itself; every field is optional.

    Attributes:
        settings: the production settings module (manage.py's default otherwise).
        requirements: the dependency file to read, relative to the project's directory.
        groups: optional dependency groups, extras or Pipfile categories to install too.
        build_commands: shell commands run in the build after collectstatic, in the app's
            directory, with the image's venv first on PATH and no network.
        build_packages: Debian packages the build stage needs (headers, tools).
        runtime_packages: Debian packages the running image needs (shared libraries).
        build_env: variables set for collectstatic and the build commands only (settings
            that refuse to import without them); never baked into the runtime image.
        build_files: (source on the host, destination) files put in place for the build
            steps only (a settings file of secrets, say), and never in the final image;
            a relative destination is relative to manage.py's directory.
        collectstatic: run collectstatic at build time; None lets kitbuild decide.
        suite: the Debian suite of kitbuild's base images (bookworm: Python 3.11, trixie:
            3.13); None takes the oldest that runs the project.

    """

    settings: str | None = None
    requirements: str | None = None
    groups: tuple[str, ...] = ()
    build_commands: tuple[str, ...] = ()
    build_packages: tuple[str, ...] = ()
    runtime_packages: tuple[str, ...] = ()
    build_env: tuple[tuple[str, str], ...] = ()
    build_files: tuple[tuple[str, str], ...] = ()
    collectstatic: bool | None = None
    suite: str | None = None

    def overridden_by(self, flags: KitConfig) -> KitConfig:
        """Lay the flags over this table: a flag's value wins, lists add up."""
        return KitConfig(
            settings=flags.settings or self.settings,
            requirements=flags.requirements or self.requirements,
            groups=_union(self.groups, flags.groups),
            build_commands=self.build_commands + flags.build_commands,
            build_packages=_union(self.build_packages, flags.build_packages),
            runtime_packages=_union(self.runtime_packages, flags.runtime_packages),
            build_env=tuple({**dict(self.build_env), **dict(flags.build_env)}.items()),
            build_files=tuple(
                {**dict(_by_dest(self.build_files)), **dict(_by_dest(flags.build_files))}.values()
            ),
            collectstatic=self.collectstatic
            if flags.collectstatic is None
            else flags.collectstatic,
            suite=flags.suite or self.suite,
        )


def _union(first: Iterable[str], second: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*first, *second]))


def _by_dest(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, tuple[str, str]]]:
    # A flag's file replaces the table's for the same destination.
    return [(dest, (source, dest)) for source, dest in pairs]


# --------------------------------------------------------------------------- parsing

# Debian's rule for package names (Debian Policy 5.6.1), so a typo fails before mmdebstrap.
_DEBIAN_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MODULE = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$")

KEYS = (
    "settings",
    "requirements",
    "groups",
    "build-commands",
    "build-packages",
    "runtime-packages",
    "build-env",
    "build-files",
    "collectstatic",
    "suite",
)


def parse_tool_table(text: str, source: str) -> KitConfig:
    """The ``[tool.kitbuild]`` table of a pyproject.toml's text (empty when there is none)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise BuildConfigError(f"{source} is not valid TOML: {error}") from None
    tool = document.get("tool", {})
    table = tool.get("kitbuild") if isinstance(tool, dict) else None
    if table is None:
        return KitConfig()
    where = f"{source} [tool.kitbuild]"
    if not isinstance(table, dict):
        raise BuildConfigError(f"{where} must be a table")
    for key in table:
        if key not in KEYS:
            raise BuildConfigError(f"{where}: unknown key {key!r}; the keys are {', '.join(KEYS)}")
    collectstatic = table.get("collectstatic")
    if collectstatic is not None and not isinstance(collectstatic, bool):
        raise BuildConfigError(f"{where}: collectstatic must be true or false")
    env = table.get("build-env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise BuildConfigError(
            f'{where}: build-env must be a table of strings, e.g. {{ DEBUG = "0" }}'
        )
    return checked(
        KitConfig(
            settings=_string(table, "settings", where),
            requirements=_string(table, "requirements", where),
            groups=_strings(table, "groups", where),
            build_commands=_strings(table, "build-commands", where),
            build_packages=_strings(table, "build-packages", where),
            runtime_packages=_strings(table, "runtime-packages", where),
            build_env=tuple(env.items()),
            build_files=tuple(
                parse_build_file(text, f"{where} build-files")
                for text in _strings(table, "build-files", where)
            ),
            collectstatic=collectstatic,
            suite=_string(table, "suite", where),
        ),
        where,
    )


def parse_env_assignment(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` (a --build-env flag) as a pair; the value may be empty."""
    name, sep, value = text.partition("=")
    if not sep or not _ENV_NAME.match(name):
        raise BuildConfigError(f"--build-env {text!r}: write it as NAME=VALUE, e.g. DEBUG=0")
    return name, value


def parse_build_file(text: str, where: str = "--build-file") -> tuple[str, str]:
    """``SRC:DEST`` (a --build-file flag) as a pair; the source is checked when building."""
    source, sep, dest = text.partition(":")
    if not sep or not source or not dest:
        raise BuildConfigError(
            f"{where} {text!r}: write it as SRC:DEST, e.g. secrets.toml:config/secrets.toml"
        )
    if ".." in PurePosixPath(dest).parts:
        raise BuildConfigError(f"{where} {text!r}: DEST must not contain '..'")
    return source, dest


def checked(config: KitConfig, where: str) -> KitConfig:
    """The config, if every value in it is usable; else BuildConfigError naming the first."""
    if config.settings is not None and not _MODULE.match(config.settings):
        raise BuildConfigError(f"{where}: settings {config.settings!r} is not a dotted module name")
    for name in (*config.build_packages, *config.runtime_packages):
        if not _DEBIAN_PACKAGE.match(name):
            raise BuildConfigError(
                f"{where}: {name!r} is not a Debian package name "
                "(lower-case letters, digits, '+', '-', '.'), e.g. libpq-dev"
            )
    for name, _ in config.build_env:
        if not _ENV_NAME.match(name):
            raise BuildConfigError(f"{where}: build-env name {name!r} is not a variable name")
    for command in config.build_commands:
        if not command.strip():
            raise BuildConfigError(f"{where}: a build command is empty")
    return config


def _string(table: Mapping[str, object], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is not None and not (isinstance(value, str) and value):
        raise BuildConfigError(f"{where}: {key} must be a non-empty string")
    return value


def _strings(table: Mapping[str, object], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BuildConfigError(f'{where}: {key} must be a list of strings, e.g. {key} = ["..."]')
    return tuple(value)


# --------------------------------------------------------------------------- reading


def read_config(root: Path, app_dir: Path | None = None) -> KitConfig:
    """The ``[tool.kitbuild]`` table of the project's pyproject.toml, or an empty config.

    The file beside manage.py or at the root, the first that has the table.
    """
    for directory in dict.fromkeys([root, *([app_dir] if app_dir else [])]):
        path = directory / "pyproject.toml"
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            raise BuildConfigError(f"cannot read {path}: {reason}") from None
        config = parse_tool_table(text, _relative(path, root))
        if config != KitConfig():
            return config
    return KitConfig()


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
