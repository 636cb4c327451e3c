"""Overcommit at start: the server already holds more than the plan leaves for this replica.

Every replica plans for its share of one budget: ``KIT_REPLICAS + KIT_MAX_SURGE`` containers
of ``peak_connections`` each. An orchestrator can run more than that (``docker service scale
web=10``, ``kubectl scale``) without telling any replica. Before it serves, a replica asks
the server how many sessions its own account already has open (every replica logs in as the
same user, and an account may always see its own sessions) and compares them, plus its own
planned peak, with the budget. More than the budget means more containers hold connections
than the plan counts: it logs a ``kitbuild.warning`` naming the numbers, or, with
``KIT_OVERCOMMIT=refuse``, does not start.

Replicas that have just started, or sit idle, hold one session each rather than their
peak, so the client addresses count too: more clients than the plan has containers (plus
one, for a migration job or a shell) is an overcommit as well. A replica holds one
session from the moment the server answers until this check, so replicas started
together (a scale-out) see each other. Containers behind one NAT count as one client.
Standard library only: the entrypoint runs the query through Django's connection.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from kitbuild_runtime.capacity import Plan

#: The account's other sessions, and how many client addresses they come from. Sessions
#: from the server's own host (its healthcheck, an administrator there) are left out: the
#: reserve covers them, and no replica runs there.
SESSIONS_QUERY = (
    "SELECT COUNT(*), COUNT(DISTINCT SUBSTRING_INDEX(HOST, ':', 1)) "
    "FROM information_schema.PROCESSLIST "
    "WHERE USER = SUBSTRING_INDEX(CURRENT_USER(), '@', 1) AND ID <> CONNECTION_ID() "
    "AND SUBSTRING_INDEX(HOST, ':', 1) NOT IN ('localhost', '127.0.0.1')"
)


@dataclasses.dataclass(frozen=True)
class Sessions:
    """The sessions the server holds for the app's account, this replica's own left out."""

    open: int
    clients: int  # distinct client addresses (containers behind one NAT count once)


@dataclasses.dataclass(frozen=True)
class Overcommit:
    """The numbers of an overcommit, and the line that explains them."""

    sessions: Sessions
    peak_connections: int
    projected: int
    budget: int
    replicas: int
    surge: int

    @property
    def message(self) -> str:
        """One line naming every number, and what to do."""
        containers = self.replicas + self.surge
        return (
            f"the server already holds {self.sessions.open} sessions of this app's account "
            f"from {self.sessions.clients} other clients; with this replica "
            f"({self.peak_connections} connections at its peak) that makes {self.projected} "
            f"sessions and {self.sessions.clients + 1} clients, but the budget of "
            f"{self.budget} is planned for KIT_REPLICAS={self.replicas} + KIT_MAX_SURGE="
            f"{self.surge} = {containers} containers of {self.peak_connections}: more run than "
            "planned (scaled by hand?); set KIT_REPLICAS to the number you run and redeploy"
        )

    def fields(self) -> dict[str, Any]:
        """The warning's JSON fields: the message and each number on its own."""
        return {
            "message": self.message,
            "open_sessions": self.sessions.open,
            "clients": self.sessions.clients,
            "peak_connections": self.peak_connections,
            "projected": self.projected,
            "budget": self.budget,
            "replicas": self.replicas,
            "surge": self.surge,
        }


def assess(plan: Plan, sessions: Sessions, replicas: int, surge: int) -> Overcommit | None:
    """An Overcommit when the server already holds more than the plan leaves for this replica.

    Either the open sessions plus this replica's peak exceed the budget, or more clients
    are connected than the plan counts containers (KIT_REPLICAS + KIT_MAX_SURGE, this one
    included, plus one for a migration job or a shell): replicas that have just started,
    or sit idle, hold a single session each, but each may hold its whole peak later.
    """
    projected = sessions.open + plan.peak_connections
    containers = replicas + surge
    if projected <= plan.budget and sessions.clients <= containers:
        return None
    return Overcommit(sessions, plan.peak_connections, projected, plan.budget, replicas, surge)
