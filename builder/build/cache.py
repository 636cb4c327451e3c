"""kitbuild's cache on the host: fetched wheelhouses and base-image probes, reused offline.

A rebuild whose dependencies and base did not change asks no index and starts no probe
container. The cache lives under ``$XDG_CACHE_HOME/kitbuild`` (default ``~/.cache/kitbuild``)::

    wheelhouse/<key>/manifest.json   what was asked (requirements, target) and the sha256
    wheelhouse/<key>/wheels/...      of every file; <key> hashes the fetch's inputs
    probe/<image id>.json            a base image's target, with the sha256 of its record

It wraps what it caches without changing it: :class:`WheelhouseCache` wraps the fetch
callable the pipeline receives, keyed on that callable's inputs (the exact requirement list
and the target), and :class:`ProbeCache` wraps a probe, keyed on the image's id.

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

from builder.build import wheelhouse
from builder.errors import KitError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

#: Bumped when the layout or the meaning of an entry changes; old entries are then misses.
FORMAT = 1
_MANIFEST = "manifest.json"


def cache_root(env: Mapping[str, str]) -> Path:
    """``$XDG_CACHE_HOME/kitbuild``, or ``~/.cache/kitbuild`` (the XDG default)."""
    base = env.get("XDG_CACHE_HOME", "").strip()
    # The XDG spec says a relative value is invalid and must be ignored.
    if not base or not os.path.isabs(base):
        base = os.path.join(env.get("HOME") or os.path.expanduser("~"), ".cache")
    return Path(base) / "kitbuild"


#: The pipeline's fetch: requirements, target and a directory in, a wheelhouse out.
Fetch = Callable[..., wheelhouse.Wheelhouse]


class CorruptEntry(Exception):
    """An entry that must not be used (a read that found it damaged or incomplete)."""


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def wheelhouse_key(requirements: Sequence[str], target: wheelhouse.Target) -> str:
    """The entry's name: a hash of exactly what the fetch is given (list order included)."""
    inputs = {
        "format": FORMAT,
        "requirements": list(requirements),
        "target": dataclasses.asdict(target),
    }
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


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
    """Wrap a fetch: the same requirements for the same target are fetched once."""

    def __init__(self, root: Path, *, say: Callable[[str], None] = print) -> None:
        """Keep entries under ``root``/wheelhouse."""
        self.directory = root / "wheelhouse"
        self._say = say

    def wrap(self, fetch: Fetch) -> Fetch:
        """A fetch with the same contract that answers from the cache when it can."""

        def cached_fetch(
            requirements: Sequence[str],
            target: wheelhouse.Target,
            directory: Path,
            **options: Any,
        ) -> wheelhouse.Wheelhouse:
            return self.fetch(fetch, requirements, target, directory, **options)

        return cached_fetch

    def fetch(
        self,
        fetch: Fetch,
        requirements: Sequence[str],
        target: wheelhouse.Target,
        directory: Path,
        **options: Any,
    ) -> wheelhouse.Wheelhouse:
        """Copy the cached wheelhouse into ``directory``, fetching and storing it on a miss."""
        entry = self.directory / wheelhouse_key(requirements, target)
        manifest = self._intact(entry)
        if manifest is None:
            manifest = self._store(fetch, requirements, target, entry, **options)
        else:
            self._say(f"kitbuild: dependencies unchanged; the wheelhouse comes from {entry}")
        directory.mkdir(parents=True, exist_ok=True)
        for name in manifest["files"]:
            destination = directory / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(entry / "wheels" / name, destination)
        return wheelhouse.Wheelhouse(directory, tuple(manifest["from_source"]))

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
        fetch: Fetch,
        requirements: Sequence[str],
        target: wheelhouse.Target,
        entry: Path,
        **options: Any,
    ) -> dict[str, Any]:
        self.directory.mkdir(parents=True, exist_ok=True)
        # Fetched beside its final place, then renamed: a reader never sees half an entry.
        staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=self.directory))
        try:
            try:
                fetched = fetch(requirements, target, staging / "wheels", **options)
            except KitError as error:
                raise type(error)(f"{error}{self._hint(requirements, target)}") from None
            manifest = {
                "format": FORMAT,
                "requirements": list(requirements),
                "target": dataclasses.asdict(target),
                "from_source": list(fetched.from_source),
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

    def _hint(self, requirements: Sequence[str], target: wheelhouse.Target) -> str:
        """What is new since the latest cached fetch for the same target (for a failure)."""
        latest: tuple[float, list[str]] | None = None
        wanted = json.loads(json.dumps(dataclasses.asdict(target)))  # tuples as JSON lists
        for entry in self.directory.glob("*/" + _MANIFEST):
            try:
                manifest = json.loads(entry.read_text())
                if manifest.get("target") != wanted:
                    continue
                stamp = entry.stat().st_mtime
            except (OSError, ValueError):
                continue
            if latest is None or stamp > latest[0]:
                latest = (stamp, list(manifest.get("requirements", [])))
        if latest is None:
            return ""
        added = [line for line in requirements if line not in latest[1]]
        if not added:
            return ""
        return f" (not in kitbuild's cache, new since its last fetch: {', '.join(added)})"


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
        self.directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".partial-", dir=self.directory)
        with os.fdopen(handle, "w") as stream:
            json.dump(data, stream)
        os.replace(temporary, record)
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
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self._say(f"kitbuild: cached probe {record.name} is damaged; probing again")
            record.unlink(missing_ok=True)
            return None


def clear(root: Path) -> tuple[int, int]:
    """Empty the cache; return how many entries and bytes it held."""
    entries = size = 0
    for kind in ("wheelhouse", "probe"):
        for item in (root / kind).glob("*") if (root / kind).is_dir() else ():
            entries += 1
            files = [item] if item.is_file() else [p for p in item.rglob("*") if p.is_file()]
            size += sum(p.stat().st_size for p in files)
    if root.exists():
        shutil.rmtree(root)
    return entries, size
