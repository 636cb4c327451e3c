"""One session on a MySQL-compatible server, reading its counters: kitbuild's only status client.

`kitbuild verify` watches its server through it; the benchmark and the tests use the same
class, so they all count the server's connections the same way.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import pymysql

from builder.errors import ServerError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType


@dataclasses.dataclass(frozen=True)
class Credentials:
    """The accounts the run's server is started with."""

    root_password: str
    user: str
    password: str
    database: str


class ServerSession:
    """One open session (autocommit) on a server; it counts in the server's own figures."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        user: str,
        password: str,
        connect_timeout: float = 10,
        read_timeout: float = 30,
    ) -> None:
        """Log in now; ServerError when the server does not accept the login."""
        login: dict[str, Any] = {"host": host, "port": port, "user": user, "password": password}
        try:
            self._connection = pymysql.connect(
                **login, autocommit=True, connect_timeout=connect_timeout, read_timeout=read_timeout
            )
        except pymysql.MySQLError as error:
            raise ServerError(f"cannot log in to the server at {host}:{port}: {error}") from None

    def __enter__(self) -> ServerSession:
        """Use as a context manager that closes the session."""
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the session."""
        self.close()

    def status(self, name: str) -> int:
        """A global status counter, such as Max_used_connections."""
        row = self.one("SHOW GLOBAL STATUS LIKE %s", name)
        return int(row[1]) if row else 0

    def statuses(self, names: Sequence[str]) -> dict[str, int]:
        """Several global status counters read in one statement, so they are of one instant.

        Each name maps to its value (0 for a counter the server does not have, as in
        :meth:`status`).
        """
        placeholders = ", ".join(["%s"] * len(names))
        rows = self.rows(
            f"SHOW GLOBAL STATUS WHERE Variable_name IN ({placeholders})",
            *names,
        )
        found = {str(row[0]).lower(): int(row[1]) for row in rows}
        return {name: found.get(name.lower(), 0) for name in names}

    def variable(self, name: str) -> int:
        """A global numeric variable, such as max_connections."""
        row = self.one("SHOW GLOBAL VARIABLES LIKE %s", name)
        if row is None:
            raise ServerError(f"the server has no variable {name}")
        return int(row[1])

    def sessions_of(self, user: str) -> int:
        """The open sessions of one account."""
        row = self.one("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = %s", user)
        return int(row[0]) if row else 0

    def reset_high_water_mark(self) -> None:
        """FLUSH STATUS: Max_used_connections restarts from the sessions open now."""
        self.rows("FLUSH STATUS")

    def one(self, sql: str, *arguments: Any) -> tuple[Any, ...] | None:
        """The first row of a statement, or None."""
        rows = self.rows(sql, *arguments)
        return rows[0] if rows else None

    def rows(self, sql: str, *arguments: Any) -> list[tuple[Any, ...]]:
        """Every row of a statement."""
        try:
            with self._connection.cursor() as cursor:
                cursor.execute(sql, arguments or None)
                return [tuple(row) for row in cursor.fetchall()]
        except pymysql.MySQLError as error:
            raise ServerError(f"lost the session to the server: {error}") from None

    def close(self) -> None:
        """End the session."""
        self._connection.close()


def answers(host: str, port: int, *, user: str, password: str, timeout: float = 2) -> bool:
    """Whether the server accepts this login and answers SELECT 1 right now."""
    try:
        with ServerSession(
            host, port, user=user, password=password, connect_timeout=timeout
        ) as session:
            return session.one("SELECT 1") == (1,)
    except ServerError:
        return False
