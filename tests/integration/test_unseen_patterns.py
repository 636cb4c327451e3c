"""Patterns found in projects nobody here had seen, each a fixture built unmodified and served.

- settings-assigned: manage.py and wsgi.py *assign* DJANGO_SETTINGS_MODULE; the image still
  migrates and serves kitbuild's overlay (the database from the environment, not localhost).
- static-outside: STATIC_ROOT=/Project/static; the files are there in the image, root's,
  served by whitenoise and copied by ``static DEST``.
- proxy-https: SECURE_SSL_REDIRECT behind a proxy; SECURE_PROXY_SSL_HEADER ends the loop.
- build-secrets: settings that import only with a secrets file and a secret variable; given
  with --build-file and --build-env, neither is in any layer or history line of the image.
- a git requirement, served by the test on 127.0.0.1: in the image, its commit in the SBOM.

One kitbuild/mysql serves the module's apps (each migrates it, then serves on its own port);
the tests are dealt one by one over the workers (tests/scheduling.py), so each worker that
runs one of them starts its own server.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import secrets
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.engine import DockerGateway
from builder.image.context import SBOM_PATH
from builder.verify.options import parse_options
from builder.verify.run import app_environment, new_credentials
from builder.verify.stack import RunningApp, VerifyStack
from kitbuild_runtime import events
from tests import vcs_server
from tests.integration.conftest import PROJECTS, BuildWithCli, Built

pytestmark = pytest.mark.docker

MAX_CONNECTIONS = 40


def request(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    """GET path on 127.0.0.1:port (Host: localhost); the status, Location and body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": "localhost", **(headers or {})})
        response = connection.getresponse()
        return response.status, response.getheader("Location") or "", response.read()
    finally:
        connection.close()


class Stack:
    """A migrated server and a way to start each fixture's app against it."""

    def __init__(self, stack: VerifyStack, environment: dict[str, str]) -> None:
        """Keep the stack and the app environment every app gets."""
        self.stack, self.environment = stack, environment

    @contextlib.contextmanager
    def app(self, image: str, **extra: str) -> Iterator[RunningApp]:
        """Migrate with ``image``, then serve it (healthy) until the block ends."""
        environment = {**self.environment, **extra}
        self.stack.run_migrate(image, environment, timeout=120)
        running = self.stack.start_app(image, environment, cpus=1.0, timeout=60)
        try:
            yield running
        finally:
            self.stack.remove(running)


@pytest.fixture(scope="module")
def stack(gateway: DockerGateway, mysql_server_image: str) -> Iterator[Stack]:
    """The module's server at max_connections 40, alias ``db``."""
    verify_stack = VerifyStack(gateway, f"test-unseen-{secrets.token_hex(4)}")
    try:
        credentials = new_credentials()
        verify_stack.start_database(mysql_server_image, MAX_CONNECTIONS, credentials)
        options = parse_options("unused", max_connections=str(MAX_CONNECTIONS))
        yield Stack(verify_stack, app_environment(options, credentials))
    finally:
        verify_stack.close()


def built(build_with_cli: BuildWithCli, name: str, *extra: str) -> Built:
    """Build a fixture project; fail with the build's output when it does not build."""
    result = build_with_cli(PROJECTS / name, *extra)
    assert 0 == result.code, result
    return result


def test_assigned_settings_module_still_serves_the_overlay(
    build_with_cli: BuildWithCli, stack: Stack
) -> None:
    """manage.py and wsgi.py assign DJANGO_SETTINGS_MODULE: migrate and serve use the overlay.

    The project's own settings name localhost and allow no host; through the overlay the
    database is the test server (the page counts users in a migrated table) and
    ALLOWED_HOSTS comes from the environment. The log says what the WSGI module assigned
    and which settings the image overlays.
    """
    image = built(build_with_cli, "settings-assigned")

    with stack.app(image.tag) as running:
        status, _, body = request(running.port, "/")
        logs = running.container.logs(stdout=True, stderr=False)

    assert (200, b"users: 0\n") == (status, body), logs[-2000:]
    said = events.read(logs, events.SETTINGS)
    overlaid = [(r.get("module"), r.get("overlays")) for r in said]
    assert ("kitbuild_runtime.django_settings", "notes.settings") in overlaid, said
    assert any(
        record.get("assigned") == "notes.settings" and "WSGI module" in record["message"]
        for record in said
    ), said


def test_static_root_outside_the_project_is_kept_where_the_settings_say(
    gateway: DockerGateway, build_with_cli: BuildWithCli, stack: Stack
) -> None:
    """STATIC_ROOT=/Project/static: collected there, root's (read-only), served, copyable."""
    image = built(build_with_cli, "static-outside")

    listing = gateway.run(
        image.tag,
        ["stat", "-c", "%u %n", "/Project/static/gallery.css", "/app", "/app/manage.py"],
        network_mode="none",
    ).decode()
    copied = gateway.run(
        image.tag,
        ["sh", "-c", "python -m kitbuild_runtime static /tmp/out && ls /tmp/out"],
        network_mode="none",
        environment={"DATABASE_URL": "mysql://app:pw@db.invalid:3306/app"},
    ).decode()
    with stack.app(image.tag) as running:
        status, _, body = request(running.port, "/static/gallery.css")

    assert ["0 /Project/static/gallery.css", "10001 /app", "10001 /app/manage.py"] == (
        listing.split("\n")[:3]
    )
    assert "gallery.css" in copied
    assert (200, b"body { color: #336; }\n") == (status, body)


def test_proxy_ssl_header_ends_the_https_redirect_loop(
    build_with_cli: BuildWithCli, stack: Stack
) -> None:
    """SECURE_SSL_REDIRECT behind a proxy: without the variable every request redirects.

    With SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https the proxy's header makes the
    request secure (200), and plain http still redirects to https.
    """
    image = built(build_with_cli, "proxy-https")

    with stack.app(image.tag) as running:
        without = request(running.port, "/", {"X-Forwarded-Proto": "https"})
    header = "HTTP_X_FORWARDED_PROTO,https"
    with stack.app(image.tag, SECURE_PROXY_SSL_HEADER=header) as running:
        proxied = request(running.port, "/", {"X-Forwarded-Proto": "https"})
        plain = request(running.port, "/")

    assert (301, "https://localhost/") == without[:2]
    assert (200, b"secure: True\n") == (proxied[0], proxied[2])
    assert (301, "https://localhost/") == plain[:2]


def test_build_files_and_build_env_reach_no_layer_and_no_history(
    gateway: DockerGateway, build_with_cli: BuildWithCli, tmp_path: Path
) -> None:
    """Settings that need a secrets file and a secret variable build; neither is in the image.

    Not in `docker history`, not in any layer of `docker save`, and the file is not at its
    destination; the static files the steps collected with them are.
    """
    file_secret = f"file-secret-{secrets.token_hex(12)}"
    env_secret = f"env-secret-{secrets.token_hex(12)}"
    secrets_file = tmp_path / "secrets.toml"
    secrets_file.write_text(f'secret_key = "{file_secret}"\n')
    image = built(
        build_with_cli,
        "build-secrets",
        "--build-file",
        f"{secrets_file}:vault/config/secrets.toml",
        "--build-env",
        f"PAYMENT_API_SECRET_KEY={env_secret}",
    )

    history = subprocess.run(
        ["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", image.tag],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    saved = subprocess.run(["docker", "save", image.tag], check=True, capture_output=True).stdout
    found = gateway.run(
        image.tag,
        ["sh", "-c", "ls /app/vault/config /app/staticfiles; ls -d /kitbuild-* 2>&1 || true"],
        network_mode="none",
    ).decode()

    assert "kitbuild_runtime.buildsteps" not in history  # the steps' RUN is not the image's
    assert file_secret not in history
    assert env_secret not in history
    assert not _layers_containing(saved, [file_secret.encode(), env_secret.encode()])
    assert "secrets.toml" not in found
    assert "secrets.example.toml" in found
    assert "vault.css" in found
    assert "No such file" in found  # neither the build files' nor the mirror's folder


def _layers_containing(saved: bytes, needles: list[bytes]) -> list[str]:
    """The members of a `docker save` archive (layers, configs) holding any needle."""
    found = []
    with tarfile.open(fileobj=io.BytesIO(saved)) as archive:
        for member in archive.getmembers():
            handle = archive.extractfile(member) if member.isfile() else None
            if handle is None:
                continue
            data = handle.read()
            if member.name.endswith("layer.tar"):
                with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                    for entry in layer.getmembers():
                        if not entry.isfile():
                            continue
                        inner = layer.extractfile(entry)
                        if inner is not None and any(n in inner.read() for n in needles):
                            found.append(f"{member.name}:{entry.name}")
            elif any(needle in data for needle in needles):
                found.append(member.name)
    return found


def test_git_requirement_is_in_the_image_and_its_commit_in_the_sbom(
    gateway: DockerGateway, build_with_cli: BuildWithCli, tmp_path: Path
) -> None:
    """A `name @ git+http://…@tag` line, served on 127.0.0.1, reaches the image.

    Built on the host, installed offline in the image (importable), and the SBOM names the
    tag's commit.
    """
    served_root = tmp_path / "served"
    served_root.mkdir()
    with contextlib.contextmanager(vcs_server.serve)(served_root) as served:
        commit = vcs_server.make_repository(served, tmp_path)
        project = tmp_path / "site"
        shutil.copytree(PROJECTS / "whitenoise-app", project)
        requirements = project / "requirements.txt"
        requirements.write_text(
            requirements.read_text() + f"tinypkg @ git+{served.url}/tinypkg.git@v0.3\n"
        )
        image = build_with_cli(project)
    assert 0 == image.code, image

    imported = gateway.run(
        image.tag, ["python", "-c", "import tinypkg; print(tinypkg.VALUE)"], network_mode="none"
    )
    sbom = json.loads(gateway.read_file(image.tag, SBOM_PATH))
    tinypkg = next(c for c in sbom["components"] if c["name"] == "tinypkg")

    assert b"3\n" == imported
    assert commit in json.dumps(tinypkg)
    assert any(ref["type"] == "vcs" for ref in tinypkg.get("externalReferences", []))
