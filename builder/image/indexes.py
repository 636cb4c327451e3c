"""The indexes a project names, made usable on the host: credentials, then pip's and uv's settings.

A URL is kept as the project wrote it (:class:`~builder.image.locks.PackageIndex`) and
completed only here, when pip, uv or git is about to use it:

* ``${VARIABLE}`` is expanded from the environment, as pip does in requirements files
  and Pipenv in its sources (``https://${USER}:${PIP_INDEX_PASSWORD}@host/simple``);
* a named index without credentials in its URL takes uv's or Poetry's variables for it:
  ``UV_INDEX_<NAME>_USERNAME``/``_PASSWORD``, ``POETRY_HTTP_BASIC_<NAME>_USERNAME``/``_PASSWORD``;
* ``~/.netrc`` is read by pip, uv and git themselves.

The tools get the URLs through their environment (``PIP_INDEX_URL``, ``UV_EXTRA_INDEX_URL``
...), never on a command line, and no message carries a credential
(:func:`~builder.image.locks.sources.strip_userinfo`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

from builder.errors import ResolveError
from builder.image.locks.sources import strip_userinfo

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from builder.image.locks import PackageIndex

_VARIABLE = re.compile(r"\$\{([A-Za-z0-9_]+)\}")

#: Each kind of index as pip's and uv's variables name it, with the list's separator.
PIP = {"index": ("PIP_INDEX_URL", " "), "extra": ("PIP_EXTRA_INDEX_URL", " "),
       "links": ("PIP_FIND_LINKS", " ")}  # fmt: skip
UV = {"index": ("UV_INDEX_URL", " "), "extra": ("UV_EXTRA_INDEX_URL", " "),
      "links": ("UV_FIND_LINKS", ",")}  # fmt: skip


def expand(text: str, env: Mapping[str, str], what: str) -> str:
    """``text`` with its ``${VARIABLE}`` references expanded; one line naming an unset one."""
    missing = [name for name in _VARIABLE.findall(text) if name not in env]
    if missing:
        raise ResolveError(
            f"{what} uses ${{{missing[0]}}}, which is not set: export it (it completes "
            f"{strip_userinfo(text)})"
        )
    return _VARIABLE.sub(lambda match: env[match.group(1)], text)


def usable_url(index: PackageIndex, env: Mapping[str, str]) -> str:
    """The index's URL with its credentials: expanded, or from the variables of its name."""
    url = expand(index.url, env, f"the index {strip_userinfo(index.url)}")
    parts = urlsplit(url)
    if not index.name or "@" in parts.netloc or not parts.scheme.startswith("http"):
        return url
    key = re.sub(r"[^A-Z0-9]", "_", index.name.upper())
    for prefix in (f"UV_INDEX_{key}_", f"POETRY_HTTP_BASIC_{key}_"):
        user, password = env.get(prefix + "USERNAME", ""), env.get(prefix + "PASSWORD", "")
        if user or password:
            userinfo = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
            return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))
    return url


def tool_env(
    env: Mapping[str, str],
    indexes: Sequence[PackageIndex],
    names: Mapping[str, tuple[str, str]],
    configured: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """``env`` with the project's indexes laid over the configured ones, in pip's or uv's names.

    An ``index`` replaces the configured index; ``extra`` and ``links`` are added to the
    configured lists (``configured`` holds those of pip.conf, under the same names), which
    the variables would otherwise replace.
    """
    result = dict(env)
    for kind, (variable, separator) in names.items():
        urls = [usable_url(index, env) for index in indexes if index.kind == kind]
        if not urls:
            continue
        if kind == "index":
            result[variable] = urls[-1]  # as pip does with several, the last one counts
            continue
        known = result.get(variable) or (configured or {}).get(variable, "")
        result[variable] = separator.join([*filter(None, [known]), *urls])
    return result
