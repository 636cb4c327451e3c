"""``kitbuild plan``: flags, environment, output forms and one-line errors for bad input."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from builder import cli

FIXTURES = Path(__file__).parent / "fixtures" / "cgroup"
SEED_FLAGS = [
    "--cpus", "2", "--max-connections", "1000", "--reserved", "40",
    "--connections-per-thread", "2", "--max-threads", "0",
]  # fmt: skip


def run(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(argv, env=env or {}, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_seed_flags_as_json() -> None:
    """The issue's acceptance command prints workers 5 and threads 96 as JSON."""
    code, out, err = run(["plan", *SEED_FLAGS, "--json"])

    data = json.loads(out)
    assert (0, "") == (code, err)
    assert (5, 96) == (data["workers"], data["threads"])


def test_environment_supplies_defaults_and_flags_win() -> None:
    """Each flag defaults to its variable; a flag given beats the variable."""
    env = {"DATABASE_MAX_CONNECTIONS": "1000", "KIT_CPUS": "2", "KIT_MAX_THREADS": "0"}
    _, from_env, _ = run(["plan", "--json"], env)
    _, overridden, _ = run(["plan", "--json", "--cpus", "1"], env)

    assert (5, 192) == (json.loads(from_env)["workers"], json.loads(from_env)["threads"])
    assert "set by DATABASE_MAX_CONNECTIONS" == json.loads(from_env)["reasons"]["max_connections"]
    assert 3 == json.loads(overridden)["workers"]


def test_cgroup_root_is_read(tmp_path: Path) -> None:
    """--cgroup-root points the reader at another tree (here v2 with a 1.5 CPU quota)."""
    _, out, _ = run(["plan", "--json", "--cgroup-root", str(FIXTURES / "v2-quota-1.5")])

    assert 1.5 == json.loads(out)["cpus"]
    assert 4 == json.loads(out)["workers"]


def test_table_is_the_default_output() -> None:
    """Without --json the plan is a readable table."""
    code, out, _ = run(["plan", *SEED_FLAGS])

    assert 0 == code
    assert "threads per worker" in out
    assert "96" in out


BAD_INPUTS = [
    (["--max-connections", "abc"], {}, "--max-connections='abc' is not a whole number"),
    (["--max-connections", "-1"], {}, "--max-connections='-1' is out of range"),
    (["--max-connections", "0"], {}, "--max-connections='0' is out of range"),
    (["--max-connections", "1.5"], {}, "--max-connections='1.5' is not a whole number"),
    (["--max-connections", "10000000"], {}, "--max-connections='10000000' is out of range"),
    ([], {"DATABASE_MAX_CONNECTIONS": "abc"}, "DATABASE_MAX_CONNECTIONS='abc' is not a whole"),
    ([], {"DATABASE_MAX_CONNECTIONS": "0"}, "DATABASE_MAX_CONNECTIONS='0' is out of range"),
    (["--reserved", "-3"], {}, "--reserved='-3' is out of range"),
    (["--reserved", "x"], {}, "--reserved='x' is not a whole number"),
    (
        ["--max-connections", "100", "--reserved", "100"],
        {},
        "--reserved=100 must be below --max-connections=100",
    ),
    (
        [],
        {"DATABASE_MAX_CONNECTIONS": "50", "DATABASE_RESERVED_CONNECTIONS": "60"},
        "DATABASE_RESERVED_CONNECTIONS=60 must be below DATABASE_MAX_CONNECTIONS=50",
    ),
    (["--connections-per-thread", "0"], {}, "--connections-per-thread='0' is out of range"),
    (["--connections-per-thread", "1.5"], {}, "--connections-per-thread='1.5' is not a whole"),
    ([], {"DATABASE_CONNECTIONS_PER_THREAD": "two"}, "DATABASE_CONNECTIONS_PER_THREAD='two'"),
    (["--replicas", "0"], {}, "--replicas='0' is out of range"),
    ([], {"KIT_REPLICAS": "-2"}, "KIT_REPLICAS='-2' is out of range"),
    (["--surge", "-1"], {}, "--surge='-1' is out of range"),
    ([], {"KIT_MAX_SURGE": "1e3"}, "KIT_MAX_SURGE='1e3' is not a whole number"),
    (["--workers", "0"], {}, "--workers='0' is out of range"),
    ([], {"WEB_CONCURRENCY": "x"}, "WEB_CONCURRENCY='x' is not a whole number"),
    ([], {"WEB_CONCURRENCY": "5000"}, "WEB_CONCURRENCY='5000' is out of range"),
    (["--max-threads", "-1"], {}, "--max-threads='-1' is out of range"),
    ([], {"KIT_MAX_THREADS": "lots"}, "KIT_MAX_THREADS='lots' is not a whole number"),
    (["--cpus", "0"], {}, "--cpus='0' is not a CPU count"),
    (["--cpus", "-1"], {}, "--cpus='-1' is not a CPU count"),
    (["--cpus", "nan"], {}, "--cpus='nan' is not a CPU count"),
    (["--cpus", "inf"], {}, "--cpus='inf' is not a CPU count"),
    (["--cpus", "99999"], {}, "--cpus='99999' is not a CPU count"),
    ([], {"KIT_CPUS": "two"}, "KIT_CPUS='two' is not a CPU count"),
    (["--memory", "lots"], {}, "--memory='lots' is not a size"),
    (["--memory", "512X"], {}, "--memory='512X' is not a size"),
    (["--memory", "1"], {}, "--memory='1' is out of range"),
    ([], {"KIT_MEMORY": "-5G"}, "KIT_MEMORY='-5G' is not a size"),
    (["--worker-memory", "0"], {}, "--worker-memory='0' is out of range"),
    (
        ["--max-connections", "10", "--reserved", "5", "--replicas", "6"],
        {},
        "budget too small: 10 max_connections - 5 reserved = 5 connections for 6 containers",
    ),
    (
        ["--cgroup-root", str(FIXTURES / "v1-malformed-quota")],
        {},
        "cannot parse " + str(FIXTURES / "v1-malformed-quota" / "cpu" / "cpu.cfs_quota_us"),
    ),
    (["--cgroup-root", "/nonexistent"], {}, "--cgroup-root /nonexistent is not a directory"),
]


@pytest.mark.parametrize(("flags", "env", "expected"), BAD_INPUTS)
def test_bad_input_is_one_line_and_exit_1(
    flags: list[str], env: dict[str, str], expected: str
) -> None:
    """Each bad flag or variable gives one line naming it and what is valid, exit 1, no output."""
    code, out, err = run(["plan", *flags], env)

    assert (1, "") == (code, out)
    assert err.startswith("kitbuild: error: ")
    assert expected in err
    assert 1 == err.count("\n")


def test_whole_number_errors_say_what_is_valid() -> None:
    """The message gives the meaning and the valid range, so the fix is obvious."""
    _, _, err = run(["plan"], {"DATABASE_MAX_CONNECTIONS": "abc"})

    assert "the server's max_connections, 1 to 100000" in err


@pytest.mark.parametrize(
    "argv",
    [["plan", "--nope"], [], ["plan", "--cpus"], ["build"], ["base", "--suite", "sid"]],
)
def test_usage_errors_are_one_line_and_exit_2(argv: list[str]) -> None:
    """Unknown flags, unknown commands and missing values are one line with exit 2."""
    code, out, err = run(argv)

    assert (2, "") == (code, out)
    assert 1 == err.count("\n")
    assert "--help" in err


def test_unknown_word_is_neither_command_nor_directory() -> None:
    """`kitbuild frobnicate` (no such directory) names both possibilities."""
    code, _, err = run(["frobnicate"])

    assert 1 == code
    commands = "plan, build, base, verify, deploy, cache"
    assert f"'frobnicate' is neither a command ({commands}) nor a directory" in err


def test_empty_variable_counts_as_unset() -> None:
    """DATABASE_MAX_CONNECTIONS='' (compose's `${VAR:-}`) means not set, not an error."""
    code, out, _ = run(["plan", "--json"], {"DATABASE_MAX_CONNECTIONS": ""})

    assert 0 == code
    assert 151 == json.loads(out)["max_connections"]


def test_installed_console_script_runs_without_traceback() -> None:
    """The installed `kitbuild` script gives the seed plan, and bad input gives no traceback.

    The script is the one pip installed beside this interpreter, found whatever PATH is.
    """
    script = str(Path(sysconfig.get_path("scripts")) / "kitbuild")
    good = subprocess.run(
        [script, "plan", *SEED_FLAGS, "--json"], capture_output=True, text=True, check=False
    )
    bad = subprocess.run(
        [script, "plan", "--max-connections", "abc"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert 0 == good.returncode
    assert 96 == json.loads(good.stdout)["threads"]
    assert 1 == bad.returncode
    assert "Traceback" not in bad.stderr
    assert 1 == len(bad.stderr.splitlines())


def test_module_runs_with_python_dash_m() -> None:
    """`python -m builder plan` is the same CLI."""
    result = subprocess.run(
        [sys.executable, "-m", "builder", "plan", *SEED_FLAGS, "--json"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert 0 == result.returncode
    assert 5 == json.loads(result.stdout)["workers"]
