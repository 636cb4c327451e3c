"""Requirements files (pip's ``-r`` format): resolved for the image, or a lock when hashed.

A file whose lines carry ``--hash`` is pip's hash-checking mode: every requirement is then
pinned and hashed, and is installed as written, like a lock. Any other file is left to
the resolver. ``-r`` includes are followed. ``--extra-index-url`` and ``--find-links``
are kept: the packages are fetched from there too, as pip would. ``--index-url`` (``-i``)
is reported and left to the user's configuration, which chooses the primary index.
``name @ url`` lines (a git repository or an archive) are built on the host.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from typing import TYPE_CHECKING

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from builder.errors import LockError, ProjectError
from builder.image.locks.format import Declared, Selection, unresolved
from builder.image.locks.pins import PackageIndex, Pin, sorted_pins
from builder.image.locks.sources import check_direct, is_vcs, strip_userinfo

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Iterator

    from builder.image.locks.format import ProjectFile
    from builder.image.locks.pins import Target


class RequirementsFile:
    """``requirements.txt``, else the one ``requirements*.txt``; any other file when named."""

    name = "requirements"
    found_by = ("requirements.txt", "requirements*.txt")
    manifest = None

    def claims(self, filename: str) -> bool:
        """A file found by one of its patterns."""
        return any(fnmatch.fnmatchcase(filename, pattern) for pattern in self.found_by)

    def declares_any(self, found: ProjectFile) -> bool:
        """A requirements file found is read, even an empty one."""
        return True

    def declare(self, found: ProjectFile) -> Declared:
        """The file with its includes, in order; hashed lines are kept for a lock."""
        lines: list[RequirementLine] = []
        sources: list[str] = []
        _expand(found, set(), lines, sources)
        named = (package_index(item, where) for item, where in zip(lines, sources, strict=True))
        every = tuple(dict.fromkeys(index for index in named if index is not None))
        # The primary index is the user's to choose (a mirror, an air-gapped proxy): a
        # file's -i/--index-url is reported, not used; the indexes it adds are used.
        indexes = tuple(index for index in every if index.kind != "index")
        notes = tuple(
            f"kitbuild: {found.source} names {_WORDS[index.kind]} "
            f"{strip_userinfo(index.url)}; its packages are fetched from there"
            for index in indexes
        ) + tuple(
            f"kitbuild: {found.source} names the index {strip_userinfo(index.url)}; packages "
            "come from the index your pip and uv configuration names (PIP_INDEX_URL, "
            "UV_INDEX_URL); set it there, or make it an --extra-index-url line"
            for index in every
            if index.kind == "index"
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
            format=self,
            source=found.source,
            direct=direct,
            notes=notes,
            hashed=hashed,
            indexes=indexes,
        )

    def requires_python(self, declared: Declared) -> str | None:
        """None: a requirements file names no Python; the base image follows Django."""
        return None

    def select(self, declared: Declared, target: Target, groups: Collection[str]) -> Selection:
        """Hashed lines as pins; otherwise the lines, left to the resolver."""
        if not declared.hashed:
            return unresolved(declared, groups)
        if groups:
            raise ProjectError(
                f"{declared.source} has no groups; remove --group {next(iter(groups))!r}"
            )
        pins = parse_hashed_requirements(declared.hashed, target)
        return Selection(pins=tuple(dataclasses.replace(p, indexes=declared.indexes) for p in pins))


FORMAT = RequirementsFile()


def _expand(
    found: ProjectFile, seen: set[ProjectFile], lines: list[RequirementLine], sources: list[str]
) -> None:
    """Append the file's lines to ``lines`` (and its name to ``sources``), includes in place."""
    if found in seen:
        return
    seen.add(found)
    where = found.source
    for item in parse_requirements(found.text(), where):
        if item.include is not None:
            included = found.beside(item.include)
            if included is None:
                raise ProjectError(f"{where} includes {item.include}, which does not exist")
            _expand(included, seen, lines, sources)
        else:
            lines.append(item)
            sources.append(where)


@dataclasses.dataclass(frozen=True)
class RequirementLine:
    """One requirement (with its --hash values), an include, or an index option."""

    requirement: str | None = None
    include: str | None = None
    hashes: tuple[str, ...] = ()
    index: str | None = None  # -i / --index-url / --extra-index-url / -f, as written
    number: int = 0


_INDEX = re.compile(
    r"^(-i|--index-url|--extra-index-url|-f|--find-links)(?:\s*=\s*|\s+|(?<=^-[if]))(\S+)"
)
_KINDS = {"-i": "index", "--index-url": "index", "--extra-index-url": "extra"}
_WORDS = {"index": "the index", "extra": "the extra index", "links": "the --find-links location"}


def package_index(item: RequirementLine, where: str) -> PackageIndex | None:
    """The index an index line names (None for another line)."""
    match = _INDEX.match(item.index or "")
    if match is None:
        return None
    option, url = match.groups()
    if "://" not in url and not url.startswith("/"):
        raise ProjectError(
            f"{where}:{item.number}: {option} {url} is a relative path; kitbuild needs a URL "
            "or an absolute path"
        )
    return PackageIndex(url, _KINDS.get(option, "links"))


def parse_requirements(text: str, source: str) -> Iterator[RequirementLine]:
    """Yield the requirements (with hashes), -r includes and index options of a file.

    Editable requirements cannot be fetched for an image: they raise ProjectError. Other
    pip options (--only-binary ...) do not change what is installed.
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
            check_direct(parsed.url, f"{source}:{number}: {parsed.name}", ProjectError)
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


def parse_hashed_requirements(
    lines: Iterable[tuple[str, tuple[str, ...], str]], target: Target
) -> list[Pin]:
    """Requirements with --hash (``(requirement, hashes, where)``) as pins, like a lock.

    pip's hash-checking mode needs every requirement pinned with ``==`` and hashed; a file
    that hashes some lines but not others is refused the way pip would refuse it.
    """
    pins: dict[str, Pin] = {}
    for text, hashes, where in lines:
        try:
            requirement = Requirement(text)
        except InvalidRequirement as error:
            raise LockError(f"{where}: cannot parse {text!r}: {error}") from None
        if requirement.marker is not None and not requirement.marker.evaluate(
            {**target.environment, "extra": ""}
        ):
            continue
        name = canonicalize_name(requirement.name)
        if requirement.url:  # pip hashes an archive; a git commit is its own hash
            if not hashes and not is_vcs(requirement.url):
                raise LockError(
                    f"{where}: {requirement.name} needs --hash, since other requirements in "
                    "the file have hashes (pip's hash-checking mode)"
                )
            pins[name] = Pin(name, "", tuple(hashes), url=requirement.url)
            continue
        pinned = [s for s in requirement.specifier if s.operator in ("==", "===")]
        if not hashes or len(pinned) != 1 or "*" in pinned[0].version:
            raise LockError(
                f"{where}: {requirement.name} needs an exact ==version and --hash, "
                "since other requirements in the file have hashes (pip's hash-checking mode)"
            )
        known = pins.get(name)
        merged = tuple(dict.fromkeys([*(known.hashes if known else ()), *hashes]))
        pins[name] = Pin(name, pinned[0].version, merged)
    return sorted_pins(pins.values())
