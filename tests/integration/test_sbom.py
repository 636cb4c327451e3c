"""Every image carries a CycloneDX SBOM of its venv, made from what was installed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packaging.utils import canonicalize_name

from builder.engine import DockerGateway
from builder.image.context import SBOM_PATH
from tests.integration.conftest import ROOT, BuildWithCli, Built

pytestmark = pytest.mark.docker

# Runs in the image's venv: the runtime has no pip, so `pip list` is read the way pip does.
_INSTALLED = (
    "import importlib.metadata as m, json;"
    "print(json.dumps(sorted([d.metadata['Name'], d.version] for d in m.distributions())))"
)


def _components(sbom: dict[str, object]) -> dict[str, dict[str, object]]:
    components = sbom["components"]
    assert isinstance(components, list)
    return {canonicalize_name(str(c["name"])): c for c in components}


def test_sbom_lists_exactly_the_installed_packages_and_validates(
    gateway: DockerGateway, mysite_image: Built
) -> None:
    """Names and versions match the venv's distributions; the schema accepts the file."""
    text = gateway.read_file(mysite_image.tag, SBOM_PATH).decode()
    sbom = json.loads(text)
    installed = json.loads(
        gateway.run(mysite_image.tag, ["python", "-c", _INSTALLED], network_mode="none")
    )

    assert {(canonicalize_name(name), version) for name, version in installed} == {
        (name, c["version"]) for name, c in _components(sbom).items()
    }
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    assert "CycloneDX" == sbom["bomFormat"]
    assert SBOM_PATH == gateway.summary(mysite_image.tag).labels["io.kitbuild.sbom"]


def test_sbom_carries_hashes_and_declared_licences(
    gateway: DockerGateway, mysite_image: Built
) -> None:
    """Django's entry has the SHA-256 of the wheel it was installed from, and its licence."""
    sbom = json.loads(gateway.read_file(mysite_image.tag, SBOM_PATH))
    django = _components(sbom)["django"]

    hashes = django["hashes"]
    assert isinstance(hashes, list)
    assert "SHA-256" == hashes[0]["alg"]
    assert 64 == len(hashes[0]["content"])
    assert django["licenses"]
    assert str(django["purl"]).startswith("pkg:pypi/django@5.2.")


def test_sbom_option_writes_the_images_sbom_on_the_host(
    gateway: DockerGateway, build_with_cli: BuildWithCli, tmp_path: Path
) -> None:
    """`--sbom FILE` writes the very file the image carries."""
    destination = tmp_path / "mysite.cdx.json"
    built = build_with_cli(ROOT / "examples" / "mysite", "--sbom", str(destination))

    assert 0 == built.code, built
    assert destination.read_bytes() == gateway.read_file(built.tag, SBOM_PATH)
    assert f"kitbuild: wrote the SBOM of {built.tag} to {destination}" in built.out
