"""Keep kitbuild's settings overlay in force whatever the project's modules assign.

Django reads DJANGO_SETTINGS_MODULE once, when its settings are first used. Many projects'
``wsgi.py`` (and some ``manage.py``) *assign* the variable instead of calling
``setdefault``; imported first, they would make Django load the bare project settings,
without the overlay: the database would be the project's ``localhost``, ALLOWED_HOSTS its
own. So the image configures the settings before it imports such a module
(:func:`configure`), and afterwards puts the variable back (:func:`restore`), saying once
what the project had assigned. Image only.
"""

from __future__ import annotations

import os
import sys

from kitbuild_runtime import events

#: The overlay module the image's DJANGO_SETTINGS_MODULE names.
OVERLAY = "kitbuild_runtime.django_settings"


def configure() -> None:
    """Load the settings named by DJANGO_SETTINGS_MODULE now, so later assignments are moot."""
    from django.conf import settings  # noqa: PLC0415 - image only

    # Any setting's access makes LazySettings import the module the variable names now.
    getattr(settings, "INSTALLED_APPS", None)


def restore(overlay: str, who: str) -> str | None:
    """Put DJANGO_SETTINGS_MODULE back to ``overlay``; return (and log) what ``who`` set."""
    assigned = os.environ.get("DJANGO_SETTINGS_MODULE", "")
    if not overlay or assigned == overlay:
        return None
    os.environ["DJANGO_SETTINGS_MODULE"] = overlay
    message = (
        f"{who} sets DJANGO_SETTINGS_MODULE={assigned}; kitbuild serves its overlay of "
        f"{os.environ.get('KIT_PROJECT_SETTINGS', '?')} (build with --settings {assigned} "
        "to overlay that module instead)"
    )
    # One write per line: every gunicorn worker says this at once, on the same pipe.
    sys.stdout.write(
        events.line(events.SETTINGS, {"message": message, "assigned": assigned}) + "\n"
    )
    sys.stdout.flush()
    return assigned
