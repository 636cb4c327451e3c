#!/bin/bash
# kitbuild/nginx's HEALTHCHECK: healthy when nginx answers /nginx-health with 200.
# The image has no curl or wget: bash's /dev/tcp speaks the one request needed.
set -eo pipefail
exec 3<>/dev/tcp/127.0.0.1/8080
printf 'GET /nginx-health HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
read -r -t 4 _ status _ <&3
[ "$status" = 200 ]
