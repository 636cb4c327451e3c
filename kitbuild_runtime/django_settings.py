"""Django settings for the container: the project's own, with the environment laid over them.

DJANGO_SETTINGS_MODULE points here (``kitbuild_runtime.django_settings``);
KIT_PROJECT_SETTINGS names the project's module. The project is not edited: its settings
are imported as they are, then DATABASES["default"], DEBUG, SECRET_KEY, ALLOWED_HOSTS and
CSRF_TRUSTED_ORIGINS come from the environment (see :mod:`kitbuild_runtime.environment`).
Other database aliases are kept. Image only: it imports the project.
"""

import importlib
import os

from kitbuild_runtime import environment

_project = importlib.import_module(os.environ["KIT_PROJECT_SETTINGS"])
globals().update({name: getattr(_project, name) for name in dir(_project) if name.isupper()})

DATABASES = dict(getattr(_project, "DATABASES", {}))
DATABASES["default"] = environment.database(os.environ)
globals().update(environment.django_overrides(os.environ))
