"""gunicorn settings for kitbuild images; the entrypoint sets KIT_WORKERS/THREADS/BIND.

The values follow the seed recipe (gthread, backlog 2048, timeouts 60/60, keepalive 30,
its access-log format, logs on stdout/stderr); GUNICORN_* variables override them (see
:func:`kitbuild_runtime.environment.gunicorn_settings`), and GUNICORN_CMD_ARGS still
overrides everything. Image only: gunicorn loads it by path (``--config``).
"""

import os

from kitbuild_runtime import environment, worker

globals().update(environment.gunicorn_settings(os.environ))

wsgi_app = "kitbuild_runtime.wsgi:application"
worker_class = "kitbuild_runtime.worker.DrainingThreadWorker" if worker.supported() else "gthread"
workers = int(os.environ.get("KIT_WORKERS", "1"))
threads = int(os.environ.get("KIT_THREADS", "1"))
bind = [os.environ.get("KIT_BIND", "0.0.0.0:8000")]
accesslog = "-"
errorlog = "-"
proc_name = "gunicorn_" + os.environ.get("KIT_PROJECT_NAME", "app")
# Heartbeat files on tmpfs: a slow disk (or a read-only root) must not stall workers.
worker_tmp_dir = "/dev/shm"
reload = False
daemon = False
# No control socket (gunicorn >= 25.1): nothing should steer a container's server from inside.
control_socket_disable = True
