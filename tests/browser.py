"""A real browser for the report tests: Debian's Chromium, headless, kept off the network.

:func:`open_page` loads a local page, takes a screenshot, and returns what the page logged
to its console (script errors are logged there) and every URL it asked the network for.
Chromium runs with every name resolving to nothing and a proxy on a closed loopback port,
so not even its own background requests leave the machine. :func:`read_png` decodes the
screenshot with the standard library, so a test can check what was drawn.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium")

#: Marks a test that needs Chromium (`apt-get install -y chromium`). It is skipped where
#: Chromium is missing, except in CI (CI=true), which installs it (.ci/run): there it fails.
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="needs Debian's chromium: apt-get install -y chromium",
)

FLAGS = (
    "--headless",
    "--disable-gpu",
    "--hide-scrollbars",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--run-all-compositor-stages-before-draw",
    # Nothing leaves the machine: no name resolves, and any request goes to a closed port.
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=127.0.0.1:9",
    "--enable-logging=stderr",
    "--v=0",
)

#: A console line in Chromium's log: `[...:INFO:CONSOLE:12] "message", source: URL (12)`.
CONSOLE = re.compile(r":CONSOLE(?:\(\d+\)|:\d+)\] \"(.*)\", source: ")


@dataclasses.dataclass(frozen=True)
class Rendering:
    """What opening a page gave: its screenshot, its console, its network requests."""

    screenshot: Path
    console: list[str]
    requests: list[str]


def open_page(page: Path, screenshot: Path, *, width: int = 1280, height: int = 1900) -> Rendering:
    """Load ``page`` in headless Chromium at width x height and screenshot the window."""
    assert CHROMIUM is not None, "no chromium on PATH: .ci/run installs it with apt-get"
    work = screenshot.parent / f".{screenshot.stem}-chromium"
    work.mkdir(parents=True, exist_ok=True)
    net_log = work / "net-log.json"
    flags = [*FLAGS, f"--user-data-dir={work / 'profile'}", f"--log-net-log={net_log}"]
    if os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    done = subprocess.run(
        [
            CHROMIUM,
            *flags,
            f"--window-size={width},{height}",
            f"--screenshot={screenshot}",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert 0 == done.returncode, done.stderr[-3000:]
    assert screenshot.is_file(), done.stderr[-3000:]
    rendering = Rendering(
        screenshot, CONSOLE.findall(done.stderr), _page_requests(net_log.read_text())
    )
    shutil.rmtree(work, ignore_errors=True)
    return rendering


def _page_requests(net_log: str) -> list[str]:
    """The URLs a file:// page asked the network for (Chromium's own requests left out)."""
    log = json.loads(net_log if net_log.rstrip().endswith("}") else net_log.rstrip(",\n") + "]}")
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        event["params"]["url"]
        for event in log["events"]
        if event["type"] == start
        and "file://" in event.get("params", {}).get("network_isolation_key", "")
    ]


@dataclasses.dataclass(frozen=True)
class Picture:
    """A decoded PNG: its size, and how many pixels it has of each (red, green, blue)."""

    width: int
    height: int
    colours: collections.Counter[tuple[int, int, int]]

    def count(self, colour: str, tolerance: int = 24) -> int:
        """How many pixels are within ``tolerance`` (per channel) of ``#rrggbb``."""
        want = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
        return sum(
            number
            for pixel, number in self.colours.items()
            if all(abs(a - b) <= tolerance for a, b in zip(pixel, want, strict=True))
        )


def read_png(path: Path) -> Picture:
    """Decode an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    position, chunks, header = 8, [], b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        position += 12 + length
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (8, 0) == (depth, interlace), (depth, interlace)
    assert colour_type in {2, 6}, colour_type  # RGB or RGBA
    channels = 4 if colour_type == 6 else 3
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    previous = bytearray(stride)
    colours: collections.Counter[tuple[int, int, int]] = collections.Counter()
    for y in range(height):
        offset = y * (stride + 1)
        kind, line = raw[offset], bytearray(raw[offset + 1 : offset + 1 + stride])
        _unfilter(kind, line, previous, channels)
        colours.update(zip(line[0::channels], line[1::channels], line[2::channels], strict=True))
        previous = line
    return Picture(width, height, colours)


def _unfilter(kind: int, line: bytearray, previous: bytearray, step: int) -> None:
    """Undo one scanline's PNG filter in place (filters 0 to 4 of the PNG spec)."""
    if kind == 0:
        return
    if kind == 2:
        line[:] = bytes((a + b) & 0xFF for a, b in zip(line, previous, strict=True))
        return
    for i in range(len(line)):
        left = line[i - step] if i >= step else 0
        up = previous[i]
        if kind == 1:
            line[i] = (line[i] + left) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + (left + up) // 2) & 0xFF
        else:
            corner = previous[i - step] if i >= step else 0
            guess = left + up - corner
            near = min(
                (abs(guess - left), 0, left),
                (abs(guess - up), 1, up),
                (abs(guess - corner), 2, corner),
            )
            line[i] = (line[i] + near[2]) & 0xFF
