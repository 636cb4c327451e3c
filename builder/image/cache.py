"""kitbuild's cache on the host: fetched wheelhouses and base-image probes, reused offline.

A rebuild whose dependencies and base did not change asks no index and starts no probe
container. The cache lives under ``$XDG_CACHE_HOME/kitbuild`` (default ``~/.cache/kitbuild``)::

    wheelhouse/<key>/manifest.json   what was asked (pins, target) and the sha256
    wheelhouse/<key>/wheels/...      of every file; <key> hashes the fetch's inputs
    resolve/<key>.json               the pins an unlocked resolution gave; <key> hashes
                                     its inputs (requirements, constraints, target)
    probe/<image id>.json            a base image's target, with the sha256 of its record

It wraps what it caches without changing it: :class:`WheelhouseCache` wraps the fetch
callable the pipeline receives, keyed on that callable's inputs (the exact pins' lines and
the target); :class:`ResolveCache` wraps the resolver the same way (so an unlocked project
is not resolved again, which needs the index, until ``kitbuild cache clear``); and
:class:`ProbeCache` wraps a probe, keyed on the image's id.

Entries are written whole or not at all (a temporary directory renamed into place), and
checked on every read: an entry whose manifest is missing or unreadable, or whose files
are missing, extra, or do not match their sha256, is thrown away and fetched again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from builder.errors import CorruptEntry, KitError
from builder.image import locks, wheelhouse

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

#: Bumped when the layout or the meaning of an entry changes; old entries are then misses.
FORMAT = 2
_MANIFEST = "manifest.json"


def cache_root(env: Mapping[str, str]) -> Path:
    """``$XDG_CACHE_HOME/kitbuild``, or ``~/.cache/kitbuild`` (the XDG default)."""
    base = env.get("XDG_CACHE_HOME", "").strip()
    # The XDG spec says a relative value is invalid and must be ignored.
    if not base or not os.path.isabs(base):
        base = os.path.join(env.get("HOME") or os.path.expanduser("~"), ".cache")
    return Path(base) / "kitbuild"


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _key(inputs: Mapping[str, Any]) -> str:
    text = json.dumps({"format": FORMAT, **inputs}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def wheelhouse_key(pins: Sequence[locks.Pin], target: wheelhouse.Target) -> str:
    """The entry's name: a hash of exactly what the fetch is given (list order included).

    A pin's indexes count (as written, ``${VARIABLES}`` unexpanded); without any, the key is
    what it was before pins had them.
    """
    lines = [pin.line() + _indexes_key(pin.indexes) for pin in pins]
    return _key({"pins": lines, "target": dataclasses.asdict(target)})


def _indexes_key(indexes: Sequence[locks.PackageIndex]) -> str:
    return "".join(f" --{index.kind}={index.url}" for index in indexes)


def resolve_key(
    requirements: Sequence[str],
    constraints: Sequence[locks.Pin],
    target: wheelhouse.Target,
    indexes: Sequence[locks.PackageIndex] = (),
) -> str:
    """A resolution's name: a hash of its requirement lines, its constraints and the target."""
    inputs: dict[str, Any] = {
        "requirements": list(requirements),
        "constraints": [pin.line() for pin in constraints],
        "target": dataclasses.asdict(target),
    }
    if indexes:
        inputs["indexes"] = _indexes_key(indexes)
    return _key(inputs)


def _file_hashes(directory: Path) -> dict[str, str]:
    hashes = {}
    for path in sorted(directory.rglob("*")):
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise CorruptEntry(f"unexpected entry {path.name}")
        if path.is_file():
            hashes[path.relative_to(directory).as_posix()] = sha256_file(path)
    return hashes


def read_entry(entry: Path) -> dict[str, Any]:
    """The manifest of an intact wheelhouse entry; CorruptEntry if anything does not match."""
    try:
        manifest = json.loads((entry / _MANIFEST).read_text())
        expected = dict(manifest["files"])
        if manifest["format"] != FORMAT:
            raise ValueError("format")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CorruptEntry(f"unreadable manifest ({type(error).__name__})") from None
    found = _file_hashes(entry / "wheels") if (entry / "wheels").is_dir() else {}
    if found != expected:
        missing = sorted(set(expected) - set(found))
        extra = sorted(set(found) - set(expected))
        changed = sorted(
            name for name in set(found) & set(expected) if found[name] != expected[name]
        )
        what = (missing and f"missing {missing[0]}") or (extra and f"unexpected {extra[0]}")
        raise CorruptEntry(what or f"sha256 of {changed[0]} does not match")
    return dict(manifest)


class WheelhouseCache:
    """Wrap a fetch: the same pins for the same target are fetched once."""

    def __init__(self, root: Path, *, say: Callable[[str], None] = print) -> None:
        """Keep entries under ``root``/wheelhouse."""
        self.directory = root / "wheelhouse"
        self._say = say

    def wrap(self, fetch: wheelhouse.Fetch) -> wheelhouse.Fetch:
        """A fetch with the same contract that answers from the cache when it can."""

        def cached_fetch(
            pins: Sequence[locks.Pin],
            target: wheelhouse.Target,
            directory: Path,
            *,
            say: Callable[[str], None] = print,
        ) -> wheelhouse.Wheelhouse:
            return self.fetch(fetch, pins, target, directory, say=say)

        return cached_fetch

    def fetch(
        self,
        fetch: wheelhouse.Fetch,
        pins: Sequence[locks.Pin],
        target: wheelhouse.Target,
        directory: Path,
        *,
        say: Callable[[str], None] = print,
    ) -> wheelhouse.Wheelhouse:
        """Copy the cached wheelhouse into ``directory``, fetching and storing it on a miss."""
        entry = self.directory / wheelhouse_key(pins, target)
        manifest = self._intact(entry)
        if manifest is None:
            manifest = self._store(fetch, pins, target, entry, say=say)
        else:
            self._say(f"kitbuild: dependencies unchanged; the wheelhouse comes from {entry}")
        directory.mkdir(parents=True, exist_ok=True)
        for name in manifest["files"]:
            destination = directory / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(entry / "wheels" / name, destination)
        return wheelhouse.Wheelhouse(
            directory, tuple(manifest["from_source"]), tuple(manifest["requirements"])
        )

    def _intact(self, entry: Path) -> dict[str, Any] | None:
        if not entry.exists():
            return None
        try:
            return read_entry(entry)
        except CorruptEntry as error:
            self._say(f"kitbuild: cached wheelhouse {entry.name[:12]} is damaged ({error}); "
                      "fetching it again")  # fmt: skip
            shutil.rmtree(entry, ignore_errors=True)
            return None

    def _store(
        self,
        fetch: wheelhouse.Fetch,
        pins: Sequence[locks.Pin],
        target: wheelhouse.Target,
        entry: Path,
        *,
        say: Callable[[str], None],
    ) -> dict[str, Any]:
        self.directory.mkdir(parents=True, exist_ok=True)
        # Fetched beside its final place, then renamed: a reader never sees half an entry.
        staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=self.directory))
        try:
            try:
                fetched = fetch(pins, target, staging / "wheels", say=say)
            except KitError as error:
                raise type(error)(f"{error}{self._hint(pins, target)}") from None
            manifest = {
                "format": FORMAT,
                "pins": [pin.line() for pin in pins],
                "target": dataclasses.asdict(target),
                "from_source": list(fetched.from_source),
                # The install lines, each with hashes (the pin's, or its fetched file's).
                "requirements": list(fetched.requirements),
                "files": _file_hashes(staging / "wheels"),
            }
            (staging / _MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
            try:
                staging.rename(entry)
            except OSError:  # another build stored the same entry first: use that one
                if self._intact(entry) is None:
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return manifest

    def _hint(self, pins: Sequence[locks.Pin], target: wheelhouse.Target) -> str:
        """What is new since the closest cached fetch for the same target (for a failure)."""
        lines = [pin.line() for pin in pins]
        added = _new_lines(self.directory.glob("*/" + _MANIFEST), "pins", lines, target)
        if not added:
            return ""
        return f" (not in kitbuild's cache, new since its last fetch: {', '.join(added)})"


def _new_lines(
    records: Iterable[Path], field: str, lines: Sequence[str], target: wheelhouse.Target
) -> list[str]:
    """``lines`` missing from the cached record for ``target`` that shares most of them.

    The closest record, not merely the latest: a build stores more than one (the SBOM tool's
    own resolution and wheelhouse come after the project's).
    """
    best: tuple[int, float, list[str]] | None = None
    wanted = json.loads(json.dumps(dataclasses.asdict(target)))  # tuples as JSON lists
    for record in records:
        try:
            data = json.loads(record.read_text())
            if data.get("target") != wanted:
                continue
            known = [str(line) for line in data.get(field, [])]
            rank = (len(set(known) & set(lines)), record.stat().st_mtime, known)
        except (OSError, ValueError, AttributeError, TypeError):
            continue
        if best is None or rank[:2] > best[:2]:
            best = rank
    if best is None:
        return []
    return [line for line in lines if line not in best[2]]


class ResolveCache:
    """Wrap a resolver: the same requirements, constraints and target are resolved once."""

    def __init__(self, root: Path, *, say: Callable[[str], None] = print) -> None:
        """Keep resolutions under ``root``/resolve."""
        self.directory = root / "resolve"
        self._say = say

    def wrap(self, resolve: wheelhouse.Resolve) -> wheelhouse.Resolve:
        """A resolver with the same contract that answers from the cache when it can."""

        def cached_resolve(
            requirements: Sequence[str],
            target: wheelhouse.Target,
            *,
            constraints: Sequence[locks.Pin] = (),
            indexes: Sequence[locks.PackageIndex] = (),
        ) -> list[locks.Pin]:
            key = resolve_key(requirements, constraints, target, indexes)
            record = self.directory / (key + ".json")
            cached = self._read(record)
            if cached is not None:
                return [dataclasses.replace(pin, indexes=tuple(indexes)) for pin in cached]
            try:
                pins = resolve(requirements, target, constraints=constraints, indexes=indexes)
            except KitError as error:
                hint = self._hint(requirements, target)
                raise type(error)(f"{error}{hint}") from None
            body = json.dumps(
                [[pin.name, pin.version, list(pin.hashes), *([pin.url] if pin.url else [])]
                 for pin in pins]
            )  # fmt: skip
            data = {
                "format": FORMAT,
                "requirements": list(requirements),
                "target": dataclasses.asdict(target),
                "pins": body,
                "sha256": hashlib.sha256(body.encode()).hexdigest(),
            }
            _write_record(self.directory, record, data)
            return pins

        return cached_resolve

    def _hint(self, requirements: Sequence[str], target: wheelhouse.Target) -> str:
        """What is new since the closest cached resolution for the same target (for a failure)."""
        added = _new_lines(self.directory.glob("*.json"), "requirements", requirements, target)
        if not added:
            return ""
        return f" (not in kitbuild's cache, new since its last resolution: {', '.join(added)})"

    def _read(self, record: Path) -> list[locks.Pin] | None:
        if not record.exists():
            return None
        try:
            data = json.loads(record.read_text())
            body = data["pins"]
            if (
                data["format"] != FORMAT
                or hashlib.sha256(body.encode()).hexdigest() != data["sha256"]
            ):
                raise ValueError("sha256")
            return [
                locks.Pin(
                    str(name),
                    str(version),
                    tuple(str(h) for h in hashes),
                    url=str(url[0]) if url else None,
                )
                for name, version, hashes, *url in json.loads(body)
            ]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self._say(f"kitbuild: cached resolution {record.name[:12]} is damaged; resolving again")
            record.unlink(missing_ok=True)
            return None


def _write_record(directory: Path, record: Path, data: Mapping[str, Any]) -> None:
    """Write a JSON record whole: beside it first, then renamed over it."""
    directory.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".partial-", dir=directory)
    with os.fdopen(handle, "w") as stream:
        json.dump(data, stream)
    os.replace(temporary, record)


class ProbeCache:
    """Wrap a base image probe: an image id is asked once."""

    def __init__(self, root: Path, *, say: Callable[[str], None] = print) -> None:
        """Keep probe records under ``root``/probe."""
        self.directory = root / "probe"
        self._say = say

    def target(self, image_id: str, probe: Callable[[], wheelhouse.Target]) -> wheelhouse.Target:
        """The cached target of ``image_id``, or ``probe()``'s answer, stored."""
        record = self.directory / (image_id.replace(":", "-") + ".json")
        cached = self._read(record)
        if cached is not None:
            return cached
        target = probe()
        body = json.dumps(dataclasses.asdict(target), sort_keys=True)
        data = {
            "format": FORMAT,
            "target": body,
            "sha256": hashlib.sha256(body.encode()).hexdigest(),
        }
        _write_record(self.directory, record, data)
        return target

    def _read(self, record: Path) -> wheelhouse.Target | None:
        if not record.exists():
            return None
        try:
            data = json.loads(record.read_text())
            body = data["target"]
            if (
                data["format"] != FORMAT
                or hashlib.sha256(body.encode()).hexdigest() != data["sha256"]
            ):
                raise ValueError("sha256")
            fields = json.loads(body)
            return wheelhouse.Target(
                python=fields["python"],
                abi=fields["abi"],
                implementation=fields["implementation"],
                platforms=tuple(fields["platforms"]),
                python_full=fields["python_full"],
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self._say(f"kitbuild: cached probe {record.name} is damaged; probing again")
            record.unlink(missing_ok=True)
            return None


def clear(root: Path) -> tuple[int, int]:
    """Empty the cache; return how many entries and bytes it held."""
    entries = size = 0
    for kind in ("wheelhouse", "resolve", "probe"):
        for item in (root / kind).glob("*") if (root / kind).is_dir() else ():
            entries += 1
            files = [item] if item.is_file() else [p for p in item.rglob("*") if p.is_file()]
            size += sum(p.stat().st_size for p in files)
    if root.exists():
        shutil.rmtree(root)
    return entries, size
