#!/bin/bash
# kitbuild/mysql's HEALTHCHECK: healthy when the server answers SELECT 1 over TCP.
#
# It logs in as the connect-only account the entrypoint made at init time (credentials in
# DATADIR/.my-healthcheck.cnf, readable by root and mysql only), or, for a datadir made
# elsewhere, as root with MARIADB_ROOT_PASSWORD / MYSQL_ROOT_PASSWORD. During the
# entrypoint's init phase the temporary server skips networking, so the check fails then.
set -eo pipefail

datadir="$(my_print_defaults --mysqld | sed -n 's/^--datadir=//p' | tail -n 1)"
datadir="${datadir:-/var/lib/mysql}"
port="$(my_print_defaults --mysqld | sed -n 's/^--port=//p' | tail -n 1)"
port="${port:-3306}"
config="${datadir%/}/.my-healthcheck.cnf"

if [ -r "$config" ]; then
	exec mariadb --defaults-extra-file="$config" --connect-timeout=3 --skip-column-names \
		--batch -e 'SELECT 1' > /dev/null
fi
password="${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD:-}}"
if [ -z "$password" ]; then
	echo "healthcheck: no $config yet and no root password in the environment" >&2
	exit 1
fi
MYSQL_PWD="$password" exec mariadb --protocol=tcp -h127.0.0.1 -P"$port" -uroot \
	--connect-timeout=3 --skip-column-names --batch -e 'SELECT 1' > /dev/null
