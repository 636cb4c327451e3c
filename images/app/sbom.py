"""Build stage only: a CycloneDX SBOM of the image's venv, with the hashes of its files.

    SBOM-VENV/bin/python sbom.py VENV-PYTHON WHEELHOUSE OUTPUT

cyclonedx-py (cyclonedx-bom) reads what is installed in the venv: each distribution's
name, version and declared licence. uv installed them from the wheelhouse, so each
component whose name and version match a file there gets that file's SHA-256 (for a package
compiled in the build stage, its source archive's). A package kitbuild built on the host
from a git repository or an archive URL (the wheelhouse's kitbuild-sources.json) gets
where it came from: a "vcs" reference to the repository and the commit, or a
"distribution" reference to the URL. The result is checked against the CycloneDX schema
with the library's own validator before it is written.
"""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version


def _key(name: str, version: str) -> tuple[str, str]:
    try:
        return canonicalize_name(name), str(Version(version))
    except InvalidVersion:
        return canonicalize_name(name), version


def wheelhouse_hashes(wheelhouse: Path) -> dict[tuple[str, str], str]:
    """SHA-256 of each wheel and source archive, by (name, version)."""
    hashes = {}
    for path in sorted(wheelhouse.iterdir()):
        try:
            if path.name.endswith(".whl"):
                name, version = parse_wheel_filename(path.name)[:2]
            else:
                name, version = parse_sdist_filename(path.name)
        except (InvalidWheelFilename, InvalidSdistFilename):
            continue  # not a distribution (the SBOM tool's own folder, for one)
        hashes[_key(name, str(version))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


#: Where the host recorded the wheelhouse's direct references (builder/image/direct.py).
SOURCES_FILE = "kitbuild-sources.json"


def add_sources(components: list, wheelhouse: Path) -> None:
    """Give each component built from git or a URL its origin (no credentials are recorded)."""
    path = wheelhouse / SOURCES_FILE
    records = json.loads(path.read_text()) if path.is_file() else []
    by_key = {_key(r["name"], r["version"]): r for r in records}
    for component in components:
        record = by_key.get(_key(component["name"], component.get("version", "")))
        if record is None:
            continue
        references = component.setdefault("externalReferences", [])
        properties = component.setdefault("properties", [])
        if record.get("vcs") == "git":
            comment = f"commit {record['commit']}"
            references.append({"type": "vcs", "url": record["repository"], "comment": comment})
            properties.append({"name": "kitbuild:vcs:commit", "value": record["commit"]})
            if record.get("requested"):
                properties.append({"name": "kitbuild:vcs:requested", "value": record["requested"]})
        else:
            references.append({"type": "distribution", "url": record["url"]})
        properties.append({"name": "kitbuild:source:url", "value": record["url"]})


def main(python: str, wheelhouse: str, output: str) -> None:
    """Write the validated SBOM of the environment ``python`` runs to ``output``."""
    tool = Path(sys.executable).parent / "cyclonedx-py"
    # --no-validate: the document is validated once, below, after the hashes are added
    # (the tool's own check took 2 s of the build; it warns that it skipped it).
    subprocess.run(
        [str(tool), "environment", "--no-validate", "--sv", "1.6", "--of", "JSON",
         "--output-reproducible", "-o", output, python],
        check=True,
    )  # fmt: skip
    bom = json.loads(Path(output).read_text())
    hashes = wheelhouse_hashes(Path(wheelhouse))
    for component in bom.get("components", []):
        digest = hashes.get(_key(component["name"], component.get("version", "")))
        if digest:
            component["hashes"] = [{"alg": "SHA-256", "content": digest}]
    add_sources(bom.get("components", []), Path(wheelhouse))
    text = json.dumps(bom, indent=2, sort_keys=True) + "\n"
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        raise SystemExit(f"the SBOM does not validate against CycloneDX 1.6: {error}")
    Path(output).write_text(text)


if __name__ == "__main__":
    main(*sys.argv[1:4])
