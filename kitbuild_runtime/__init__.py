"""kitbuild's runtime: the capacity plan and the environment readers, shared by host and image.

Standard library only, and Python 3.9 or later: the build copies this package as it is
into every image (``/opt/venv/kitbuild/kitbuild_runtime``), where the entrypoint plans with the
very code ``kitbuild plan`` and ``kitbuild verify`` use on the host. It is a package of its
own, not a part of ``builder``, because it lives beside the project's code on the image's
``sys.path``: a distinctive name cannot shadow, or be shadowed by, a project's module.

Shared by host and image:
    values       one parser per kind of value (whole numbers, CPUs, sizes, switches, lists)
    capacity     the plan: cgroup limits and settings in, workers and threads out
    events       the image's JSON log lines, and the typed plan record
    environment  the image's variables, read into Django and gunicorn settings
    entrypoint   the image's commands (``python -m kitbuild_runtime``)

Image only (they import Django or gunicorn, which the image has and the host need not):
    django_settings, wsgi, gunicorn_config, worker, collectstatic
"""
