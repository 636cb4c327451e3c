"""One parser per kind of value kitbuild reads from flags, variables and files.

Each parser takes the label the user typed the value under (``--max-connections``,
``DATABASE_PORT``) and the text, and returns the value or raises :class:`ConfigError`
whose ``str()`` is the one line the user sees: it quotes the label and the text and says
what would be valid. ``kitbuild plan``, ``kitbuild verify`` and the image's entrypoint all
parse with these, so the same mistake reads the same everywhere.
"""

from __future__ import annotations

import math
import re

from kitbuild_runtime.errors import ConfigError

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off", ""})

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1024**4,
    "tib": 1024**4,
}
_SIZE_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")

#: The largest CPU count any option accepts.
MAX_CPUS = 4096.0


def whole(label: str, text: str, low: int, high: int, meaning: str) -> int:
    """A whole number from ``low`` to ``high``; ``meaning`` says what it counts."""
    value = text.strip()
    if not re.fullmatch(r"[+-]?\d+", value):
        raise ConfigError(f"{label}={text!r} is not a whole number: {meaning}, {low} to {high}")
    number = int(value)
    if not low <= number <= high:
        raise ConfigError(f"{label}={text!r} is out of range: {meaning}, {low} to {high}")
    return number


def number(label: str, text: str, low: float, high: float, meaning: str) -> float:
    """A finite decimal number from ``low`` to ``high``, such as a duration in seconds."""
    try:
        value = float(text.strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ConfigError(f"{label}={text!r} is not a number: {meaning}, {low:g} to {high:g}")
    if not low <= value <= high:
        raise ConfigError(f"{label}={text!r} is out of range: {meaning}, {low:g} to {high:g}")
    return value


def cpus(label: str, text: str, high: float = MAX_CPUS) -> float:
    """A CPU count such as 0.5 or 1.5, from 0.01 to ``high``."""
    try:
        value = float(text.strip())
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0.01 <= value <= high):
        raise ConfigError(
            f"{label}={text!r} is not a CPU count: use a number from 0.01 to {high:g}, e.g. 1.5"
        )
    return value


def size(label: str, text: str) -> int:
    """A memory size in bytes or with a unit (512M, 2G), from 16M to 1024T."""
    match = _SIZE_PATTERN.match(text)
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _SIZE_UNITS:
        raise ConfigError(f"{label}={text!r} is not a size: use bytes or a unit, e.g. 512M or 2G")
    value = int(float(match.group(1)) * _SIZE_UNITS[unit])
    if not 16 * 1024**2 <= value <= 1024**5:
        raise ConfigError(f"{label}={text!r} is out of range: use 16M to 1024T")
    return value


_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def duration(label: str, text: str, low: int, high: int, meaning: str) -> int:
    """Whole seconds, written as compose writes durations (70s, 1m30s, 2h) or as a number."""
    value = text.strip()
    match = _DURATION.match(value) if value else None
    if value.isdigit():
        seconds = int(value)
    elif match and any(match.groups()):
        hours, minutes, secs = (int(part or 0) for part in match.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    else:
        raise ConfigError(
            f"{label}={text!r} is not a duration: {meaning}, e.g. 70s or 1m30s ({low} to {high} s)"
        )
    if not low <= seconds <= high:
        raise ConfigError(f"{label}={text!r} is out of range: {meaning}, {low} to {high} s")
    return seconds


def switch(label: str, text: str) -> bool:
    """A yes/no switch: true/false, yes/no, on/off, 1/0."""
    lowered = text.strip().lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise ConfigError(f"{label}={text!r} is not a switch: use true or false")


def listing(text: str) -> list[str]:
    """A comma-separated list, blanks dropped."""
    return [item.strip() for item in text.split(",") if item.strip()]


def format_bytes(count: int) -> str:
    """A byte count the way Docker's ``--memory`` flag writes it (binary units)."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if count >= factor:
            return f"{count / factor:g} {unit}"
    return f"{count} B"
