"""Starting a testcontainers container: one whose class knows how to wait for its server.

A server module (:mod:`builder.servers`) makes the testcontainers container of its server,
with its accounts, ports and idea of "ready"; this module wires it as a
:class:`~builder.engine.ContainerSpec` says, starts it and hands back a
:class:`~builder.engine.Container`. It knows no database. Ryuk, testcontainers' reaper, is
off: it is an image that would have to be pulled, and kitbuild removes its containers by
label instead.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from builder.engine._client import one_line
from builder.engine._container import Container
from builder.engine._containers import PORT_ATTEMPTS, create_options, port_taken
from builder.errors import EngineError

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer

    from builder.engine._containers import ContainerSpec


def start_testcontainer(spec: ContainerSpec, server: DockerContainer) -> Container:
    """Start ``server``, a testcontainers container of ``spec.image``, wired as ``spec`` says.

    It returns once the server's class says the server is ready. The class sets the
    environment and publishes its ports itself, so ``spec.environment`` and
    ``spec.publish`` are not used; ``spec.command``, when given, is the server's command.
    A host port the engine found taken is tried again.
    """
    from testcontainers.core.config import testcontainers_config  # noqa: PLC0415 - slow import

    testcontainers_config.ryuk_disabled = True
    if spec.command is not None:
        server = server.with_command(list(spec.command))
    options = create_options(spec)
    # The class passes these itself: its command, its environment and its ports.
    for own in ("command", "environment", "ports"):
        options.pop(own, None)
    server = server.with_kwargs(**options)
    for attempt in range(1, PORT_ATTEMPTS + 1):
        try:
            server.start()
        # testcontainers raises what it meets: the SDK's errors, TimeoutError, or a
        # RuntimeError when the container exits early. All mean "the server did not start".
        except Exception as error:
            # Remove what was created, if anything was: the same "whatever it raises".
            with contextlib.suppress(Exception):
                server.get_wrapped_container().remove(force=True, v=True)
            if not port_taken(error) or attempt == PORT_ATTEMPTS:
                raise EngineError(f"starting {spec.image} failed: {one_line(error)}") from None
            continue
        return Container(server.get_wrapped_container())
    raise AssertionError("not reached")  # pragma: no cover
