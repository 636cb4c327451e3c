"""Build stage only: a CycloneDX SBOM of the image's venv, with the hashes of its files.

    SBOM-VENV/bin/python sbom.py VENV-PYTHON WHEELHOUSE OUTPUT

cyclonedx-py (cyclonedx-bom) reads what is installed in the venv: each distribution's
name, version and declared licence. uv installed them from the wheelhouse, so each
component whose name and version match a file there gets that file's SHA-256 (for a package
compiled in the build stage, its source archive's). The result is checked against the
CycloneDX schema with the library's own validator before it is written.
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
    text = json.dumps(bom, indent=2, sort_keys=True) + "\n"
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        raise SystemExit(f"the SBOM does not validate against CycloneDX 1.6: {error}")
    Path(output).write_text(text)


if __name__ == "__main__":
    main(*sys.argv[1:4])
