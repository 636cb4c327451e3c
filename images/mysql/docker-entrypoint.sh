#!/bin/bash
# kitbuild/mysql's entrypoint: the contract of the official mariadb (10.11) and mysql images.
#
# On an empty datadir it runs mariadb-install-db, starts a temporary server without
# networking, creates root@'%' (MYSQL_ROOT_PASSWORD / MARIADB_ROOT_PASSWORD, or an empty or
# random one), the database, the user and its grants, runs /docker-entrypoint-initdb.d/*
# (.sh, .sql, .sql.gz), stops that server, and then execs the real one. Both servers print
# "ready for connections", which is what clients such as testcontainers wait for. Every
# variable may also come from a file named by VAR_FILE (docker secrets). The server never
# runs as root: a root entrypoint prepares the directories, then re-execs itself as mysql.
set -eo pipefail
shopt -s nullglob

mysql_log() {
	local type="$1"; shift
	printf '%s [%s] [Entrypoint]: %s\n' "$(date --rfc-3339=seconds)" "$type" "$*"
}
mysql_note() { mysql_log Note "$@"; }
mysql_warn() { mysql_log Warn "$@" >&2; }
mysql_error() { mysql_log ERROR "$@" >&2; exit 1; }

# usage: file_env VAR [DEFAULT]: VAR from itself, or from the file VAR_FILE names.
file_env() {
	local var="$1" def="${2:-}"
	local file_var="${var}_FILE"
	if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
		mysql_error "both $var and $file_var are set, but they are exclusive"
	fi
	local val="$def"
	if [ -n "${!var:-}" ]; then
		val="${!var}"
	elif [ -n "${!file_var:-}" ]; then
		[ -r "${!file_var}" ] || mysql_error "$file_var names ${!file_var}, which cannot be read"
		val="$(< "${!file_var}")"
	fi
	export "$var"="$val"
	unset "$file_var"
}

# usage: mariadb_file_env MYSQL_NAME [DEFAULT]: MARIADB_NAME wins, and both end up equal.
mariadb_file_env() {
	local var="$1"; shift
	local maria="MARIADB_${var#MYSQL_}"
	file_env "$var" "$@"
	file_env "$maria" "${!var}"
	if [ -n "${!maria:-}" ]; then
		export "$var"="${!maria}"
	fi
}

# usage: flag_env NAME: MARIADB_NAME from MYSQL_NAME (or MYSQL_ALIAS) when unset.
flag_env() {
	local maria="MARIADB_$1" mysql="MYSQL_${2:-$1}"
	export "$maria"="${!maria:-${!mysql:-}}"
	export "$mysql"="${!maria}"
}

# mariadbd's effective value of one option (config files, defaults and arguments).
mysql_get_config() {
	local conf="$1"; shift
	"$@" --verbose --help 2>/dev/null \
		| awk -v conf="$conf" '$1 == conf && /^[^ \t]/ { sub(/^[^ \t]+[ \t]+/, ""); print; exit }'
}

mysql_check_config() {
	local errors
	if ! errors="$("$@" --verbose --help 2>&1 >/dev/null)"; then
		mysql_error "mariadbd rejects its configuration ($*): $(printf '%s' "$errors" | tail -n 1)"
	fi
}

docker_setup_env() {
	declare -g DATADIR SOCKET PORT DATABASE_ALREADY_EXISTS
	DATADIR="$(mysql_get_config datadir "$@")"
	SOCKET="$(mysql_get_config socket "$@")"
	PORT="$(mysql_get_config port "$@")"
	DATADIR="${DATADIR%/}"

	mariadb_file_env MYSQL_ROOT_HOST '%'
	mariadb_file_env MYSQL_DATABASE
	mariadb_file_env MYSQL_USER
	mariadb_file_env MYSQL_PASSWORD
	mariadb_file_env MYSQL_ROOT_PASSWORD
	flag_env ALLOW_EMPTY_ROOT_PASSWORD ALLOW_EMPTY_PASSWORD
	flag_env RANDOM_ROOT_PASSWORD
	flag_env INITDB_SKIP_TZINFO

	DATABASE_ALREADY_EXISTS=
	if [ -d "$DATADIR/mysql" ]; then
		DATABASE_ALREADY_EXISTS=true
	fi
}

docker_verify_minimum_env() {
	if [ -z "$MARIADB_ROOT_PASSWORD" ] && [ -z "$MARIADB_ALLOW_EMPTY_ROOT_PASSWORD" ] \
		&& [ -z "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
		mysql_error "database is uninitialized and no root password option is set:" \
			"set MYSQL_ROOT_PASSWORD, MYSQL_ALLOW_EMPTY_PASSWORD or MYSQL_RANDOM_ROOT_PASSWORD" \
			"(or their MARIADB_* names)"
	fi
	if [ "$MARIADB_USER" = root ]; then
		mysql_error "MYSQL_USER=root is not allowed: root exists already; use MYSQL_ROOT_PASSWORD"
	fi
	if [ -n "$MARIADB_USER" ] && [ -z "$MARIADB_PASSWORD" ]; then
		mysql_warn "MYSQL_USER is set without MYSQL_PASSWORD: the user is not created"
	fi
}

# Make the datadir and the socket directory the mysql user's (only possible as root).
docker_create_db_directories() {
	mkdir -p "$DATADIR" "${SOCKET%/*}"
	if [ "$(id -u)" = 0 ]; then
		find "$DATADIR" \! -user mysql -exec chown mysql:mysql '{}' +
		find "${SOCKET%/*}" -maxdepth 0 \! -user mysql -exec chown mysql:mysql '{}' \;
	fi
}

docker_init_database_dir() {
	mysql_note "Initializing database files"
	mariadb-install-db --datadir="$DATADIR" --rpm --auth-root-authentication-method=normal \
		"${@:2}" \
		--skip-test-db \
		--default-time-zone=SYSTEM --enforce-storage-engine= \
		--skip-log-bin \
		--expire-logs-days=0 \
		--loose-innodb_buffer_pool_load_at_startup=0 \
		--loose-innodb_buffer_pool_dump_at_shutdown=0 \
		> /dev/null
	mysql_note "Database files initialized"
}

docker_exec_client() {
	if [ -n "$MARIADB_DATABASE" ]; then
		set -- --database="$MARIADB_DATABASE" "$@"
	fi
	mariadb --protocol=socket -uroot -hlocalhost --socket="$SOCKET" "$@"
}

# usage: docker_process_sql [--dont-use-mysql-root-password] [client args] < sql
docker_process_sql() {
	if [ "$1" = --dont-use-mysql-root-password ]; then
		shift
		MYSQL_PWD='' docker_exec_client "$@"
	else
		MYSQL_PWD="$MARIADB_ROOT_PASSWORD" docker_exec_client "$@"
	fi
}

# Escape $1 for use inside a single-quoted SQL string literal.
docker_sql_escape_string_literal() {
	local newline=$'\n'
	local escaped="${1//\\/\\\\}"
	escaped="${escaped//$newline/\\n}"
	printf '%s' "${escaped//\'/\\\'}"
}

docker_temp_server_start() {
	"$@" --skip-networking --default-time-zone=SYSTEM --socket="$SOCKET" --wsrep_on=OFF \
		--expire-logs-days=0 --loose-innodb_buffer_pool_load_at_startup=0 &
	declare -g MARIADB_PID
	MARIADB_PID=$!
	mysql_note "Waiting for server startup"
	local i
	for i in {300..0}; do
		if docker_process_sql --dont-use-mysql-root-password --database=mysql \
			<<<'SELECT 1' &> /dev/null; then
			break
		fi
		kill -0 "$MARIADB_PID" 2> /dev/null || mysql_error "the temporary server exited"
		sleep 0.1
	done
	if [ "$i" = 0 ]; then
		mysql_error "the temporary server did not start within 30 seconds"
	fi
}

docker_temp_server_stop() {
	kill "$MARIADB_PID"
	wait "$MARIADB_PID"
}

# The healthcheck's own account: it may connect (over TCP only) and do nothing else.
create_healthcheck_users() {
	local password host
	password="$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n')"
	for host in 127.0.0.1 ::1 localhost; do
		echo "CREATE USER IF NOT EXISTS healthcheck@'$host' IDENTIFIED BY '$password';"
		echo "SET PASSWORD FOR healthcheck@'$host' = PASSWORD('$password');"
		echo "GRANT USAGE ON *.* TO healthcheck@'$host';"
	done
	(
		umask 0077
		printf '[mariadb-client]\nhost=127.0.0.1\nport=%s\nuser=healthcheck\npassword=%s\nprotocol=tcp\n' \
			"$PORT" "$password" > "$DATADIR/.my-healthcheck.cnf"
	)
}

docker_setup_db() {
	if [ -z "$MARIADB_INITDB_SKIP_TZINFO" ]; then
		mariadb-tzinfo-to-sql --skip-write-binlog /usr/share/zoneinfo 2> /dev/null \
			| docker_process_sql --dont-use-mysql-root-password --database=mysql
	fi
	if [ -n "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
		MARIADB_ROOT_PASSWORD="$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n')"
		export MARIADB_ROOT_PASSWORD MYSQL_ROOT_PASSWORD="$MARIADB_ROOT_PASSWORD"
		mysql_note "GENERATED ROOT PASSWORD: $MARIADB_ROOT_PASSWORD"
	fi
	local root_password root_create='' create_database='' create_user='' user_grants=''
	root_password="$(docker_sql_escape_string_literal "$MARIADB_ROOT_PASSWORD")"
	if [ -n "$MARIADB_ROOT_HOST" ] && [ "$MARIADB_ROOT_HOST" != localhost ]; then
		root_create="CREATE USER 'root'@'$MARIADB_ROOT_HOST' IDENTIFIED BY '$root_password';
			GRANT ALL ON *.* TO 'root'@'$MARIADB_ROOT_HOST' WITH GRANT OPTION;
			GRANT PROXY ON ''@'%' TO 'root'@'$MARIADB_ROOT_HOST' WITH GRANT OPTION;"
	fi
	if [ -n "$MARIADB_DATABASE" ]; then
		mysql_note "Creating database $MARIADB_DATABASE"
		create_database="CREATE DATABASE IF NOT EXISTS \`$MARIADB_DATABASE\`;"
	fi
	if [ -n "$MARIADB_USER" ] && [ -n "$MARIADB_PASSWORD" ]; then
		mysql_note "Creating user $MARIADB_USER"
		create_user="CREATE USER '$MARIADB_USER'@'%' IDENTIFIED BY '$(docker_sql_escape_string_literal "$MARIADB_PASSWORD")';"
		if [ -n "$MARIADB_DATABASE" ]; then
			user_grants="GRANT ALL ON \`${MARIADB_DATABASE//_/\\_}\`.* TO '$MARIADB_USER'@'%';"
		fi
	fi
	local healthcheck_users
	healthcheck_users="$(create_healthcheck_users)"
	mysql_note "Securing system users"
	docker_process_sql --dont-use-mysql-root-password --database=mysql --binary-mode <<-EOSQL
		SET @orig_sql_log_bin= @@SESSION.SQL_LOG_BIN;
		SET @@SESSION.SQL_LOG_BIN=0;
		SET @@SESSION.SQL_MODE=REPLACE(@@SESSION.SQL_MODE, 'NO_BACKSLASH_ESCAPES', '');
		DROP USER IF EXISTS root@'127.0.0.1', root@'::1';
		EXECUTE IMMEDIATE CONCAT('DROP USER IF EXISTS root@\'', @@hostname, '\'');
		SET PASSWORD FOR 'root'@'localhost' = PASSWORD('$root_password');
		$root_create
		$healthcheck_users
		SET @@SESSION.SQL_LOG_BIN=@orig_sql_log_bin;
		$create_database
		$create_user
		$user_grants
	EOSQL
}

# usage: docker_process_init_files FILE...: run .sh, .sql and .sql.gz files, in order.
docker_process_init_files() {
	# shellcheck disable=SC2034 # the official images' name, for sourced scripts
	mysql=( docker_process_sql )
	local f
	for f; do
		case "$f" in
			*.sh)
				if [ -x "$f" ]; then
					mysql_note "$0: running $f"
					"$f"
				else
					mysql_note "$0: sourcing $f"
					# shellcheck disable=SC1090
					. "$f"
				fi
				;;
			*.sql) mysql_note "$0: running $f"; docker_process_sql < "$f" ;;
			*.sql.gz) mysql_note "$0: running $f"; gunzip -c "$f" | docker_process_sql ;;
			*) mysql_warn "$0: ignoring $f" ;;
		esac
	done
}

docker_mariadb_init() {
	ls /docker-entrypoint-initdb.d/ > /dev/null
	docker_init_database_dir "$@"
	mysql_note "Starting temporary server"
	docker_temp_server_start "$@"
	mysql_note "Temporary server started"
	docker_setup_db
	docker_process_init_files /docker-entrypoint-initdb.d/*
	mysql_note "Stopping temporary server"
	docker_temp_server_stop
	mysql_note "Temporary server stopped"
	mysql_note "MariaDB init process done. Ready for start up."
}

# Options that print something and exit: no setup for those.
mysql_want_help() {
	local arg
	for arg; do
		case "$arg" in
			-'?'|--help|--print-defaults|-V|--version) return 0 ;;
		esac
	done
	return 1
}

_main() {
	if [ "${1:0:1}" = - ]; then
		set -- mariadbd "$@"
	fi
	if { [ "$1" = mariadbd ] || [ "$1" = mysqld ]; } && ! mysql_want_help "$@"; then
		mysql_check_config "$@"
		docker_setup_env "$@"
		if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
			docker_verify_minimum_env
		fi
		if [ "$(id -u)" = 0 ]; then
			docker_create_db_directories
			mysql_note "Switching to dedicated user 'mysql'"
			exec setpriv --reuid=mysql --regid=mysql --init-groups "${BASH_SOURCE[0]}" "$@"
		fi
		if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
			docker_mariadb_init "$@"
		fi
	fi
	exec "$@"
}

_main "$@"
