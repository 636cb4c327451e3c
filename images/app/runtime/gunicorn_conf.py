"""gunicorn settings for kitbuild images; the entrypoint sets KIT_WORKERS/THREADS/BIND.

The values follow the seed recipe (gthread, backlog 2048, timeouts 60/60, keepalive 30,
its access-log format, logs on stdout/stderr). GUNICORN_CMD_ARGS still overrides them.
"""

import os

wsgi_app = "kitbuild_wsgi:application"
pythonpath = os.path.dirname(os.path.abspath(__file__))
worker_class = "gthread"
workers = int(os.environ.get("KIT_WORKERS", "1"))
threads = int(os.environ.get("KIT_THREADS", "1"))
bind = [os.environ.get("KIT_BIND", "0.0.0.0:8000")]
backlog = 2048
timeout = 60
graceful_timeout = 60
keepalive = 30
accesslog = "-"
errorlog = "-"
access_log_format = '%(t)s %(h)s "%(r)s" %(s)s %(b)s "%(f)s" "%(l)s"'
proc_name = "gunicorn_" + os.environ.get("KIT_PROJECT_NAME", "app")
# Heartbeat files on tmpfs: a slow disk (or a read-only root) must not stall workers.
worker_tmp_dir = "/dev/shm"
reload = False
daemon = False
# No control socket (gunicorn >= 25.1): nothing should steer a container's server from inside.
control_socket_disable = True
