"""Read the server's counters once per interval while the load runs, on verify's one session.

The sampler borrows the monitor session: between :meth:`Sampler.start` and
:meth:`Sampler.stop` only its thread uses it, and the run uses it only before and after.
It opens no session of its own, so the server's connection figures still count exactly the
app plus verify's one monitor session.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

#: Seconds between two readings of the server's counters.
SAMPLE_INTERVAL = 1.0

#: The counters read at every tick: open sessions, the high-water mark, refusals (1040).
COUNTERS = ("Threads_connected", "Max_used_connections", "Connection_errors_max_connections")


class CounterSource(Protocol):
    """What the sampler needs of a session: several status counters at once."""

    def statuses(self, names: Sequence[str]) -> Mapping[str, int]:
        """The named global status counters, read together."""
        ...


@dataclasses.dataclass(frozen=True)
class Tick:
    """One reading: the interval it closes (1 is the first) and the counters read."""

    slot: int
    at: float  # clock seconds when the reading was made
    counters: Mapping[str, int]


@dataclasses.dataclass(frozen=True)
class Sampling:
    """Every reading of one run, from the moment sampling started to the moment it stopped."""

    origin: float
    end: float
    interval: float
    ticks: tuple[Tick, ...]

    @property
    def slots(self) -> int:
        """How many intervals the run covered: one per started interval, at least one.

        A last piece shorter than half an interval is folded into the one before it, so
        no point of the timeline stands for a sliver of time.
        """
        return max(1, round((self.end - self.origin) / self.interval + 1e-9))


class Sampler:
    """A thread that reads :data:`COUNTERS` at ``origin + k x interval`` until stopped."""

    def __init__(
        self,
        source: CounterSource,
        *,
        interval: float = SAMPLE_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Nothing is read until :meth:`start`."""
        self._source = source
        self._interval = interval
        self._clock = clock
        self._stop = threading.Event()
        self._ticks: list[Tick] = []
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._origin = 0.0

    def start(self) -> float:
        """Start reading; return the origin, the clock time every interval counts from."""
        self._origin = self._clock()
        self._thread = threading.Thread(target=self._run, name="verify-sampler", daemon=True)
        self._thread.start()
        return self._origin

    def halt(self) -> None:
        """End the thread (after its reading in progress, if any); the session is free again."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def stop(self) -> Sampling:
        """End the thread, make a last reading for the last interval, and return them all.

        The thread's own failure (the session lost) is raised here, in the caller's thread.
        """
        self.halt()
        if self._error is not None:
            raise self._error
        end = self._clock()
        sampling = Sampling(self._origin, end, self._interval, ())
        last = sampling.slots
        ticks = [tick for tick in self._ticks if tick.slot < last]
        ticks.append(Tick(last, end, dict(self._source.statuses(COUNTERS))))
        return dataclasses.replace(sampling, ticks=tuple(ticks))

    def _run(self) -> None:
        slot = 1
        try:
            while not self._stop.wait(
                max(0.0, self._origin + slot * self._interval - self._clock())
            ):
                now = self._clock()
                # A reading that came late belongs to the interval it closes; skipped ones
                # stay unsampled rather than repeating a value.
                slot = max(slot, int((now - self._origin) / self._interval))
                self._ticks.append(Tick(slot, now, dict(self._source.statuses(COUNTERS))))
                slot += 1
        except BaseException as error:  # handed to the caller in stop()
            self._error = error
