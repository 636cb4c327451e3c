"""The database servers verify runs against: one module per database server.

Each module is the host side of one server: its image, how verify starts it through the
engine gateway, and how to wait for it. The engine knows no database; a server's module
makes the server's testcontainers container (its accounts, its idea of "ready"), puts
the server's own options (``max_connections``, in its command line's spelling) on the
:class:`~builder.engine.ContainerSpec` verify wired, and starts it with
:meth:`~builder.engine.DockerGateway.start_testcontainer`; its ``start`` returns a
:class:`~builder.engine.Container` once the server takes connections.

mysql   MySQL and MariaDB: kitbuild/mysql, or an official mysql or mariadb image
"""
