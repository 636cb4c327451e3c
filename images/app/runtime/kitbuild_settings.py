"""Django settings for the container: the project's own, with the environment laid over them.

DJANGO_SETTINGS_MODULE points here; KIT_PROJECT_SETTINGS names the project's module. The
project is not edited: its settings are imported as they are, then DATABASES["default"],
DEBUG, SECRET_KEY, ALLOWED_HOSTS and CSRF_TRUSTED_ORIGINS come from the environment
(see kitbuild_env). Other database aliases are kept.
"""

import importlib
import os

import kitbuild_env

_project = importlib.import_module(os.environ["KIT_PROJECT_SETTINGS"])
globals().update({name: getattr(_project, name) for name in dir(_project) if name.isupper()})

DATABASES = dict(getattr(_project, "DATABASES", {}))
DATABASES["default"] = kitbuild_env.database(os.environ)
globals().update(kitbuild_env.django_overrides(os.environ))
