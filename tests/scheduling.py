"""How a parallel run (pytest-xdist) deals the suite's tests to its workers.

A unit of work goes to one worker whole, so the fixtures its tests share are made once:

- by default a unit is a test module (a module-scoped stack, server or swarm is shared by
  the module's tests, and some modules' tests build on what an earlier one left);
- the modules in :data:`BY_PARAMETER` are dealt one parameter at a time (a corpus
  project's build and its pages are one unit; the six projects spread over the workers);
- the modules in :data:`BY_TEST` share nothing but session fixtures, so each test is a
  unit (their builds spread over the workers).

The modules in :data:`RUN_ALONE` judge a stack under load by the clock (a rolling update,
a database restart): they run last, on one worker, once every other worker has finished,
so no build on another worker starves them. The rest keeps its collection order, which
tests/conftest.py sets: the longest work first.

xdist's own ``loadgroup`` cannot do this here: it moves tests into a group by rewriting
their ids, which pytest 9 no longer allows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xdist.scheduler import LoadScopeScheduling

if TYPE_CHECKING:
    from xdist.workermanage import WorkerController

#: Modules whose verdicts depend on having the machine to themselves.
RUN_ALONE = frozenset(
    {
        "tests/integration/test_swarm.py",
        "tests/integration/test_faults.py",
    }
)

#: Modules dealt one parameter (the ``[...]`` of a test id) at a time.
BY_PARAMETER = frozenset({"tests/corpus/test_corpus.py"})

#: Modules dealt test by test: their tests share only session-scoped fixtures.
BY_TEST = frozenset(
    {
        "tests/integration/test_image_build.py",
        "tests/integration/test_dependencies.py",
        # Five builds; its module-scoped server is made again on each worker (about 10 s).
        "tests/integration/test_unseen_patterns.py",
    }
)


def unit_of(nodeid: str) -> str:
    """The unit of work a test belongs to (its module, parameter or own id)."""
    module = nodeid.split("::", 1)[0]
    if module in BY_TEST:
        return nodeid
    if module in BY_PARAMETER and nodeid.endswith("]") and "[" in nodeid:
        return f"{module}[{nodeid[nodeid.index('[') + 1 : -1]}]"
    return module


def runs_alone(unit: str) -> bool:
    """Whether a unit's module is one of :data:`RUN_ALONE`."""
    return unit.split("::", 1)[0].split("[", 1)[0] in RUN_ALONE


class KitScheduling(LoadScopeScheduling):
    """xdist's scope scheduling with kitbuild's units, and a last phase run alone."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        """As xdist's; no worker is chosen for the lone phase yet."""
        super().__init__(*args, **kwargs)
        self._alone: WorkerController | None = None

    def _split_scope(self, nodeid: str) -> str:
        return unit_of(nodeid)

    def _assign_work_unit(self, node: WorkerController) -> None:
        shared = next((unit for unit in self.workqueue if not runs_alone(unit)), None)
        if shared is not None:
            self._send(node, [shared])
            return
        # Only lone units are left. The first worker that asks runs them all; the others
        # are shut down (they finish what they hold) and the lone phase starts once they
        # have, so nothing else runs beside it.
        if self._alone is None:
            self._alone = node
        if node is not self._alone:
            node.shutdown()
            return
        self._start_alone_phase()

    def _start_alone_phase(self) -> None:
        """Send every lone unit to the chosen worker once no other worker has work."""
        node = self._alone
        if node is None or not self.workqueue or node not in self.assigned_work:
            return
        others = (work for other, work in self.assigned_work.items() if other is not node)
        if any(self._pending_of(work) for work in others):
            return
        self._send(node, list(self.workqueue))

    def _send(self, node: WorkerController, units: list[str]) -> None:
        """Give ``node`` these units of the queue, in order."""
        indexes: list[int] = []
        collection = self.registered_collections[node]
        for unit in units:
            work = self.workqueue.pop(unit)
            self.assigned_work.setdefault(node, {})[unit] = work
            indexes += [collection.index(nodeid) for nodeid, done in work.items() if not done]
        node.send_runtest_some(indexes)

    def mark_test_complete(
        self, node: WorkerController, item_index: int, duration: float = 0
    ) -> None:
        """As xdist's; then the lone phase may start, if it was waiting for this test."""
        super().mark_test_complete(node, item_index, duration)
        self._start_alone_phase()

    def remove_node(self, node: WorkerController) -> str | None:
        """As xdist's; then the lone phase may start, if it was waiting for this worker."""
        crashed: str | None = super().remove_node(node)
        if node is self._alone:
            self._alone = None
        self._start_alone_phase()
        return crashed
