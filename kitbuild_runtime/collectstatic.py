"""Collect static files at build time, with the project's own settings.

Settings modules often read secrets from the environment at import time; none exist at
build time, so this process alone gets throwaway values (never ENV in the image, so
nothing shows in `docker history`). Nothing here touches the database. Image only: the
build runs it as ``python -m kitbuild_runtime.collectstatic`` in the project's directory.
"""

import os
import secrets
import sys

for name in ("SECRET_KEY", "DJANGO_SECRET_KEY"):
    os.environ.setdefault(name, secrets.token_urlsafe(50))
os.environ.setdefault("DATABASE_URL", "mysql://build:build@127.0.0.1:3306/build")
# The project's own settings: the overlay needs a database configuration, and this does not.
os.environ["DJANGO_SETTINGS_MODULE"] = os.environ["KIT_PROJECT_SETTINGS"]
sys.path.insert(0, os.getcwd())

import django  # noqa: E402
from django.core.management import call_command  # noqa: E402

django.setup()
call_command("collectstatic", "--noinput", verbosity=1)
