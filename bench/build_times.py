"""Benchmark (not a test): cold and warm build times and image sizes, measured in one run.

    python bench/build_times.py [PROJECT]

Cold: every layer rebuilt (--no-cache), base images already present. Warm: the same
build again after touching one .py file, so only the code layers are rebuilt. Prints a
Markdown table; times on a small, noisy machine are only comparable within one run.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from builder.engine import DockerGateway  # noqa: E402


def timed_build(project: Path, tag: str, *extra: str) -> float:
    """Run one `kitbuild build` and return its wall-clock seconds."""
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "builder", "build", str(project), "--tag", tag, "--quiet", *extra],
        check=True,
        cwd=ROOT,
    )
    return time.monotonic() - started


def main() -> int:
    """Measure and print the table."""
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "examples" / "mysite"
    gateway = DockerGateway.connect()
    subprocess.run([sys.executable, "-m", "builder", "base"], check=True, cwd=ROOT)
    with tempfile.TemporaryDirectory() as scratch:
        project = Path(scratch) / source.name
        shutil.copytree(source, project)
        tag = f"kitbuild-bench/{source.name}:latest"
        cold = timed_build(project, tag, "--no-cache")
        python_files = sorted(project.rglob("*.py"))
        python_files[0].write_text(python_files[0].read_text() + "\n# touched\n")
        warm = timed_build(project, tag)
        size = gateway.summary(tag).size
        gateway.remove_image(tag)
    bases = {
        reference: gateway.summary(reference).size for reference in gateway.images("kitbuild/*")
    }
    print(f"## Build times: {source.name}, {time.strftime('%Y-%m-%d')}")
    print(f"Machine: {platform.machine()}, {len(__import__('os').sched_getaffinity(0))} CPUs\n")
    print("| measure | value |\n|---|---|")
    print(f"| cold build (--no-cache) | {cold:.1f} s |")
    print(f"| warm build (one .py touched) | {warm:.1f} s |")
    print(f"| warm / cold | {warm / cold:.2f} |")
    print(f"| image size | {size / 1e6:.0f} MB |")
    for name, base_size in sorted(bases.items()):
        print(f"| {name} | {base_size / 1e6:.0f} MB |")
    gateway.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
