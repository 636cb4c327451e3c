"""kitbuild's cache of wheelhouses and probes: keys, integrity, atomic entries (no network)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from builder import cli
from builder.errors import KitError, ResolveError
from builder.image import locks, wheelhouse
from builder.image.cache import (
    ProbeCache,
    ResolveCache,
    WheelhouseCache,
    cache_root,
    clear,
    read_entry,
    resolve_key,
    wheelhouse_key,
)

TARGET = wheelhouse.target_for("3.11.2", "2.36", "x86_64")
OTHER_TARGET = wheelhouse.target_for("3.13.5", "2.41", "x86_64")
DJANGO = locks.Pin("django", "5.2.19")
GUNICORN = locks.Pin("gunicorn", "23.0.0", ("sha256:" + "a" * 64,))
SIX = locks.Pin("six", "1.16.0")


class CountingFetch:
    """A fetch that writes two files and counts its calls (or fails, when told to)."""

    def __init__(self, *, fail: bool = False) -> None:
        """Start with no calls."""
        self.calls: list[list[str]] = []
        self.fail = fail

    def __call__(
        self,
        pins: Sequence[locks.Pin],
        target: wheelhouse.Target,
        directory: Path,
        *,
        say: Callable[[str], None] = print,
    ) -> wheelhouse.Wheelhouse:
        """Record the pins' lines; write django's wheel and mysqlclient's sdist."""
        self.calls.append([pin.line() for pin in pins])
        if self.fail:
            raise ResolveError(f"cannot fetch {pins[0].name} for Python 3.11")
        directory.mkdir(parents=True)
        (directory / "django-5.2.19-py3-none-any.whl").write_bytes(b"wheel" * 100)
        (directory / "mysqlclient-2.2.7.tar.gz").write_bytes(b"sdist")
        lines = tuple(f"{pin.line()} --hash=sha256:{'b' * 64}" for pin in pins)
        return wheelhouse.Wheelhouse(directory, ("mysqlclient",), lines)


def _cache(tmp_path: Path, said: list[str] | None = None) -> WheelhouseCache:
    return WheelhouseCache(tmp_path / "cache", say=(said if said is not None else []).append)


def _only_entry(tmp_path: Path) -> Path:
    (entry,) = (tmp_path / "cache" / "wheelhouse").iterdir()
    return entry


def test_root_follows_xdg_cache_home_else_home() -> None:
    """$XDG_CACHE_HOME/kitbuild; ~/.cache/kitbuild when unset, empty or relative."""
    assert Path("/x/kitbuild") == cache_root({"XDG_CACHE_HOME": "/x", "HOME": "/h"})
    assert Path("/h/.cache/kitbuild") == cache_root({"HOME": "/h"})
    assert Path("/h/.cache/kitbuild") == cache_root({"XDG_CACHE_HOME": "rel", "HOME": "/h"})


def test_key_is_the_exact_inputs() -> None:
    """The same pins and target give the same key; any change to either gives another."""
    base = wheelhouse_key([DJANGO, GUNICORN], TARGET)

    assert base == wheelhouse_key([locks.Pin("django", "5.2.19"), GUNICORN], TARGET)
    assert base != wheelhouse_key([DJANGO, GUNICORN, SIX], TARGET)
    assert base != wheelhouse_key([locks.Pin("django", "5.2.20"), GUNICORN], TARGET)
    assert base != wheelhouse_key([DJANGO, locks.Pin("gunicorn", "23.0.0")], TARGET)
    assert base != wheelhouse_key([DJANGO, GUNICORN], OTHER_TARGET)


def test_second_fetch_of_the_same_inputs_is_served_from_the_cache(tmp_path: Path) -> None:
    """The wrapped fetch runs once; the second call copies the same files and source list."""
    inner = CountingFetch()
    said: list[str] = []
    fetch = _cache(tmp_path, said).wrap(inner)

    first = fetch([DJANGO], TARGET, tmp_path / "a" / "wheels", say=print)
    second = fetch([DJANGO], TARGET, tmp_path / "b" / "wheels", say=print)

    assert [["django==5.2.19"]] == inner.calls
    assert ("mysqlclient",) == first.from_source == second.from_source
    assert first.requirements == second.requirements
    assert (f"django==5.2.19 --hash=sha256:{'b' * 64}",) == second.requirements
    assert tmp_path / "b" / "wheels" == second.directory
    assert b"wheel" * 100 == (second.directory / "django-5.2.19-py3-none-any.whl").read_bytes()
    assert any("dependencies unchanged" in line for line in said)


def test_manifest_lists_the_sha256_of_every_file(tmp_path: Path) -> None:
    """An entry's manifest names each file with its sha256, and the inputs that made it."""
    _cache(tmp_path).wrap(CountingFetch())([DJANGO], TARGET, tmp_path / "w")
    manifest = json.loads((_only_entry(tmp_path) / "manifest.json").read_text())

    assert ["django==5.2.19"] == manifest["pins"]
    assert {"django-5.2.19-py3-none-any.whl", "mysqlclient-2.2.7.tar.gz"} == set(manifest["files"])
    assert all(len(digest) == 64 for digest in manifest["files"].values())


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda e: (e / "wheels" / "mysqlclient-2.2.7.tar.gz").write_bytes(b"x"), "sha256"),
        (lambda e: (e / "wheels" / "mysqlclient-2.2.7.tar.gz").unlink(), "missing"),
        (lambda e: (e / "wheels" / "evil-1.0-py3-none-any.whl").write_bytes(b""), "unexpected"),
        (lambda e: (e / "manifest.json").write_text('{"files": '), "manifest"),
        (lambda e: (e / "manifest.json").unlink(), "manifest"),
    ],
)
def test_damaged_entry_is_thrown_away_and_fetched_again(
    tmp_path: Path, damage: Callable[[Path], object], reason: str
) -> None:
    """A changed, missing or extra file, or a bad manifest: never used, refetched, intact."""
    inner = CountingFetch()
    said: list[str] = []
    fetch = _cache(tmp_path, said).wrap(inner)
    fetch([DJANGO], TARGET, tmp_path / "a")
    damage(_only_entry(tmp_path))

    with pytest.raises(Exception, match=reason):
        read_entry(_only_entry(tmp_path))
    again = fetch([DJANGO], TARGET, tmp_path / "b")

    assert 2 == len(inner.calls)
    assert any("is damaged" in line for line in said)
    assert not (again.directory / "evil-1.0-py3-none-any.whl").exists()
    assert b"sdist" == (again.directory / "mysqlclient-2.2.7.tar.gz").read_bytes()
    read_entry(_only_entry(tmp_path))  # intact again


def test_failed_fetch_leaves_no_entry_and_names_what_is_new(tmp_path: Path) -> None:
    """A fetch that fails stores nothing, and its error names what the cache lacked."""
    cache = _cache(tmp_path)
    cache.wrap(CountingFetch())([DJANGO, GUNICORN], TARGET, tmp_path / "a")
    failing = cache.wrap(CountingFetch(fail=True))

    with pytest.raises(KitError) as error:
        failing([DJANGO, GUNICORN, SIX], TARGET, tmp_path / "b")

    assert str(error.value).endswith("new since its last fetch: six==1.16.0)")
    assert 1 == len(list((tmp_path / "cache" / "wheelhouse").iterdir()))  # no partial left


def test_probe_is_asked_once_per_image_id_and_a_damaged_record_is_reprobed(
    tmp_path: Path,
) -> None:
    """The same image id is answered from disk; another id, or a damaged record, probes."""
    probes: list[int] = []
    said: list[str] = []
    cache = ProbeCache(tmp_path / "cache", say=said.append)

    def probe() -> wheelhouse.Target:
        probes.append(1)
        return TARGET

    assert TARGET == cache.target("sha256:aa", probe) == cache.target("sha256:aa", probe)
    assert 1 == len(probes)
    cache.target("sha256:bb", probe)
    assert 2 == len(probes)
    record = tmp_path / "cache" / "probe" / "sha256-aa.json"
    data = json.loads(record.read_text())
    record.write_text(json.dumps({**data, "target": data["target"].replace("3.11", "3.12")}))

    assert TARGET == cache.target("sha256:aa", probe)
    assert 3 == len(probes)
    assert any("damaged" in line for line in said)


def test_cache_clear_empties_it(tmp_path: Path) -> None:
    """`kitbuild cache clear` removes every entry and says how many there were."""
    env = {"XDG_CACHE_HOME": str(tmp_path), "HOME": str(tmp_path)}
    WheelhouseCache(tmp_path / "kitbuild", say=lambda _: None).wrap(CountingFetch())(
        [DJANGO], TARGET, tmp_path / "w"
    )
    out = io.StringIO()

    code = cli.main(["cache", "clear"], env=env, stdout=out, stderr=io.StringIO())

    assert 0 == code
    assert f"kitbuild: emptied {tmp_path / 'kitbuild'} (1 entries," in out.getvalue()
    assert not (tmp_path / "kitbuild").exists()
    assert (0, 0) == clear(tmp_path / "kitbuild")


class CountingResolve:
    """A resolver that pins every requirement's name at 1.0 and counts its calls."""

    def __init__(self, *, fail: bool = False) -> None:
        """Start with no calls."""
        self.calls: list[tuple[list[str], list[str]]] = []
        self.fail = fail

    def __call__(
        self,
        requirements: Sequence[str],
        target: wheelhouse.Target,
        *,
        constraints: Sequence[locks.Pin] = (),
        indexes: Sequence[locks.PackageIndex] = (),
    ) -> list[locks.Pin]:
        """Record the call; pin each name, or fail as uv does without an index."""
        self.calls.append((list(requirements), [pin.line() for pin in constraints]))
        if self.fail:
            raise ResolveError("cannot resolve the requirements for Python 3.11.2")
        return [locks.Pin(line.split("=")[0].split(">")[0].lower(), "1.0") for line in requirements]


def test_resolution_is_cached_on_its_requirements_constraints_and_target(tmp_path: Path) -> None:
    """The same lines, constraints and target resolve once; a change to any resolves again."""
    inner = CountingResolve()
    said: list[str] = []
    resolve = ResolveCache(tmp_path / "cache", say=said.append).wrap(inner)

    first = resolve(["Django>=5.2,<5.3"], TARGET)
    second = resolve(["Django>=5.2,<5.3"], TARGET)
    assert [locks.Pin("django", "1.0")] == first == second
    assert 1 == len(inner.calls)

    resolve(["Django>=5.2,<5.3", "six"], TARGET)
    resolve(["Django>=5.2,<5.3"], OTHER_TARGET)
    resolve(["Django>=5.2,<5.3"], TARGET, constraints=[GUNICORN])
    assert 4 == len(inner.calls)
    assert (["Django>=5.2,<5.3"], [GUNICORN.line()]) == inner.calls[-1]
    assert resolve_key(["a"], [], TARGET) != resolve_key(["a"], [DJANGO], TARGET)


def test_damaged_resolution_is_resolved_again(tmp_path: Path) -> None:
    """A record whose pins do not match their sha256 is thrown away, never used."""
    inner = CountingResolve()
    said: list[str] = []
    resolve = ResolveCache(tmp_path / "cache", say=said.append).wrap(inner)
    resolve(["Django"], TARGET)
    (record,) = (tmp_path / "cache" / "resolve").iterdir()
    data = json.loads(record.read_text())
    record.write_text(json.dumps({**data, "pins": data["pins"].replace("1.0", "9.9")}))

    assert [locks.Pin("django", "1.0")] == resolve(["Django"], TARGET)
    assert 2 == len(inner.calls)
    assert any("is damaged" in line for line in said)


def test_failed_resolution_stores_nothing_and_names_what_is_new(tmp_path: Path) -> None:
    """A resolution that fails (no index) is not stored; its error names the new lines."""
    cache = ResolveCache(tmp_path / "cache", say=lambda _: None)
    cache.wrap(CountingResolve())(["Django", "gunicorn"], TARGET)
    cache.wrap(CountingResolve())(["cyclonedx-bom>=7,<8"], TARGET)  # a later, unrelated one

    with pytest.raises(KitError) as error:
        cache.wrap(CountingResolve(fail=True))(["Django", "gunicorn", "six==1.16.0"], TARGET)

    assert str(error.value).endswith("new since its last resolution: six==1.16.0)")
    assert 2 == len(list((tmp_path / "cache" / "resolve").iterdir()))


def test_cache_clear_counts_resolutions(tmp_path: Path) -> None:
    """`kitbuild cache clear` removes cached resolutions too, and counts them."""
    ResolveCache(tmp_path / "kitbuild", say=lambda _: None).wrap(CountingResolve())(
        ["Django"], TARGET
    )

    assert 1 == clear(tmp_path / "kitbuild")[0]
    assert not (tmp_path / "kitbuild").exists()
