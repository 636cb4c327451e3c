"""What every command module shares: its streams, and how a run is interrupted."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import signal
import threading
from typing import IO, TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping


class Command(Protocol):
    """What a command module provides (a module satisfies this protocol)."""

    __doc__: str | None  # the --help description

    def configure(self, parser: argparse.ArgumentParser) -> None:
        """Give the command's parser its description and options."""
        ...

    def run(self, args: argparse.Namespace, io: Io) -> int:
        """Run with the parsed options; return the exit code."""
        ...


@dataclasses.dataclass(frozen=True)
class Io:
    """A command's streams and environment (the real ones, or a test's)."""

    out: IO[str]
    err: IO[str]
    env: Mapping[str, str]

    def say(self, line: str) -> None:
        """A line of output, flushed at once (the user is watching)."""
        self.out.write(line + "\n")
        self.out.flush()

    def progress(self, line: str) -> None:
        """A progress line on stderr, so a command's --json output on stdout stays clean."""
        self.err.write(line + "\n")
        self.err.flush()


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into KeyboardInterrupt, so a stopped run cleans up after itself."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # SIGINT too: a shell starts background jobs with SIGINT ignored, and Python keeps that.
    numbers = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.signal(number, interrupt) for number in numbers}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
