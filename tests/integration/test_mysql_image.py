"""kitbuild/mysql against the real engine: the official mysql/mariadb image contract holds.

These tests start the server with testcontainers' own classes, on purpose: they check that
a tool written for the official images works on kitbuild's unchanged.
"""

from __future__ import annotations

import gzip
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
from testcontainers.community.mysql import MySqlContainer
from testcontainers.core.container import DockerContainer
from testcontainers.core.wait_strategies import LogMessageWaitStrategy

from builder.engine import DockerGateway
from builder.image.service_images import MYSQL, MYSQL_IMAGE

pytestmark = pytest.mark.docker

# What testcontainers' MySqlContainer waits for: the init server's line, then the real one's.
TWICE_READY = r".*: ready for connections.*: ready for connections.*"


@pytest.fixture(scope="session")
def mysql_image(gateway: DockerGateway) -> Iterator[str]:
    """kitbuild/mysql:latest, made if missing; testcontainers' Ryuk (a pulled image) is off."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(
            "TESTCONTAINERS_RYUK_DISABLED", os.environ.get("TESTCONTAINERS_RYUK_DISABLED", "true")
        )
        image = MYSQL.ensure(gateway)
        assert MYSQL_IMAGE == image
        yield image


def server(image: str, *command: str, **env: str) -> DockerContainer:
    """A kitbuild/mysql container with port 3306 published, ready once the real server is."""
    container = DockerContainer(image).with_exposed_ports(3306).with_envs(**env)
    if command:
        container = container.with_command(list(command))
    strategy = LogMessageWaitStrategy(re.compile(TWICE_READY, re.DOTALL | re.MULTILINE))
    return container.waiting_for(strategy.with_startup_timeout(90))


def query(
    container: DockerContainer, sql: str, user: str, password: str, db: str = ""
) -> tuple[object, ...]:
    """Run one statement over TCP through the published port; return its first row."""
    connection = pymysql.connect(
        host=container.get_container_host_ip(),
        port=int(container.get_exposed_port(3306)),
        user=user,
        password=password,
        database=db or None,
        connect_timeout=10,
    )
    with connection, connection.cursor() as cursor:
        cursor.execute(sql)
        row = cursor.fetchone()
    assert row is not None
    return tuple(row)


def test_testcontainers_mysql_container_connects(mysql_image: str) -> None:
    """Testcontainers' own MySqlContainer, with its defaults, starts and serves MariaDB."""
    with MySqlContainer(mysql_image) as mysql:
        connection = pymysql.connect(
            host=mysql.get_container_host_ip(),
            port=int(mysql.get_exposed_port(mysql.port)),
            user=mysql.username,
            password=mysql.password,
            database=mysql.dbname,
            connect_timeout=10,
        )
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT VERSION(), DATABASE(), CURRENT_USER()")
            row = cursor.fetchone()

    assert row is not None
    version, database, user = row
    assert "MariaDB" in version
    assert (mysql.dbname, f"{mysql.username}@%") == (database, user)


def test_options_given_as_the_command_reach_the_server(mysql_image: str) -> None:
    """`--max-connections=37` as the command becomes `mariadbd --max-connections=37`."""
    with MySqlContainer(mysql_image).with_command("--max-connections=37") as mysql:
        row = query(mysql, "SELECT @@max_connections", "root", mysql.root_password)

    assert (37,) == row


def test_server_runs_as_mysql_not_root(mysql_image: str) -> None:
    """PID 1 is mariadbd itself (signals reach it), owned by the mysql user."""
    with server(mysql_image, MYSQL_ROOT_PASSWORD="pw") as container:
        result = container.exec(["ps", "-o", "user=,comm=", "-p", "1"])

    assert 0 == result.exit_code
    assert ["mysql", "mariadbd"] == result.output.decode().split()


def test_missing_root_password_option_refuses_to_start(mysql_image: str) -> None:
    """With no root password option the entrypoint exits 1 with one line on stderr."""
    with DockerContainer(mysql_image).with_env("MYSQL_DATABASE", "app") as container:
        code = container.wait()
        stdout, stderr = container.get_logs()

    lines = stderr.decode().strip().splitlines()
    assert 1 == code
    assert 1 == len(lines), lines
    assert "no root password option is set" in lines[0]
    assert "MYSQL_ROOT_PASSWORD" in lines[0]
    assert b"ready for connections" not in stdout + stderr


def test_initdb_scripts_run_in_order(mysql_image: str, tmp_path: Path) -> None:
    """.sql, .sql.gz and .sh files in /docker-entrypoint-initdb.d run once, in name order."""
    initdb = tmp_path / "initdb"
    initdb.mkdir()
    (initdb / "01-schema.sql").write_text(
        "CREATE TABLE stuff (id INT PRIMARY KEY, name VARCHAR(20));\n"
        "INSERT INTO stuff VALUES (1, 'from .sql');\n"
    )
    (initdb / "02-more.sql.gz").write_bytes(
        gzip.compress(b"INSERT INTO stuff VALUES (2, 'from .sql.gz');\n")
    )
    (initdb / "03-script.sh").write_text(
        "docker_process_sql <<<\"INSERT INTO stuff VALUES (3, 'from .sh');\"\n"
    )
    initdb.chmod(0o755)  # the entrypoint reads it as the mysql user

    container = server(mysql_image, MYSQL_ROOT_PASSWORD="pw", MYSQL_DATABASE="app")
    with container.with_volume_mapping(initdb, "/docker-entrypoint-initdb.d", "ro"):
        row = query(
            container, "SELECT GROUP_CONCAT(name ORDER BY id) FROM stuff", "root", "pw", "app"
        )

    assert ("from .sql,from .sql.gz,from .sh",) == row


def test_mariadb_aliases_make_the_database_and_user(mysql_image: str) -> None:
    """MARIADB_* names work like MYSQL_* ones: root password, database, user and its grant."""
    env = {
        "MARIADB_ROOT_PASSWORD": "rootpw",
        "MARIADB_DATABASE": "shop",
        "MARIADB_USER": "clerk",
        "MARIADB_PASSWORD": "it's a \\ secret",
    }
    with server(mysql_image, **env) as container:
        as_user = query(
            container, "SELECT DATABASE(), CURRENT_USER()", "clerk", env["MARIADB_PASSWORD"], "shop"
        )
        as_root = query(container, "SELECT CURRENT_USER()", "root", "rootpw")

    assert ("shop", "clerk@%") == as_user
    assert ("root@%",) == as_root


def test_file_variants_read_secrets_from_files(mysql_image: str, tmp_path: Path) -> None:
    """MYSQL_ROOT_PASSWORD_FILE names a file (a docker secret) holding the root password."""
    secret = tmp_path / "root-password"
    secret.write_text("from-a-file")
    secret.chmod(0o600)  # read by the entrypoint while it is still root

    container = server(mysql_image, MYSQL_ROOT_PASSWORD_FILE="/run/secrets/root-password")
    with container.with_volume_mapping(secret, "/run/secrets/root-password", "ro"):
        row = query(container, "SELECT CURRENT_USER()", "root", "from-a-file")
        environment = container.exec(["cat", "/proc/1/environ"]).output

    assert ("root@%",) == row
    assert b"MYSQL_ROOT_PASSWORD_FILE" not in environment


def test_healthcheck_fails_during_init_then_turns_healthy(mysql_image: str, tmp_path: Path) -> None:
    """healthcheck.sh fails while the init server runs; the container then becomes healthy."""
    initdb = tmp_path / "initdb"
    initdb.mkdir()
    (initdb / "hold.sh").write_text(
        'echo "holding init"; while [ ! -e /tmp/go ]; do sleep 0.1; done\n'
    )
    initdb.chmod(0o755)

    container = server(mysql_image, MYSQL_ROOT_PASSWORD="pw")
    container = container.with_volume_mapping(initdb, "/docker-entrypoint-initdb.d", "ro")
    container.waiting_for(LogMessageWaitStrategy("holding init").with_startup_timeout(90))
    with container:
        during_init = container.exec(["healthcheck.sh"]).exit_code
        assert 0 == container.exec(["touch", "/tmp/go"]).exit_code
        LogMessageWaitStrategy(re.compile(TWICE_READY, re.DOTALL)).wait_until_ready(container)
        status = _health(container, until="healthy", within=60)
        after_init = container.exec(["healthcheck.sh"]).exit_code

    assert 0 != during_init
    assert "healthy" == status
    assert 0 == after_init


def _health(container: DockerContainer, *, until: str, within: float) -> str:
    """Poll the container's health status until it reads ``until`` or time runs out."""
    deadline = time.monotonic() + within
    while True:
        wrapped = container.get_wrapped_container()
        wrapped.reload()
        status = str(wrapped.attrs["State"]["Health"]["Status"])
        if status == until or time.monotonic() > deadline:
            return status
        time.sleep(0.5)
