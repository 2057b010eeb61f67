#!/bin/sh
# Entry point of the API image: Docker secrets into the environment, then the command.
#
# The app reads its secrets from environment variables (README: Configuration). With Docker secrets, set
# NAME_FILE=/run/secrets/... instead of NAME (the convention of the official images): for each
# name below whose NAME_FILE is set, NAME is exported with the file's contents (trailing
# newlines dropped) and NAME_FILE is removed. Setting both NAME and NAME_FILE is an error.
# PGPASSWORD is libpq's own variable: the database password, kept out of DATABASE_URL.
# Then the command runs as PID 1 (exec): gunicorn by default, or `flask --app wsgi ...`.
set -eu

for name in JWT_SECRET_KEY METRICS_TOKEN ADMIN_PASSWORD DATABASE_URL REDIS_URL PGPASSWORD; do
    eval "file=\${${name}_FILE:-}"
    [ -n "$file" ] || continue
    eval "direct=\${${name}:-}"
    if [ -n "$direct" ]; then
        echo "configuration error: ${name}: set either ${name} or ${name}_FILE, not both" >&2
        exit 1
    fi
    if [ ! -r "$file" ]; then
        echo "configuration error: ${name}_FILE: cannot read ${file} as uid $(id -u)" \
            "(a secret file must be readable by the container user)" >&2
        exit 1
    fi
    value=$(cat "$file")
    export "${name}=${value}"
    unset "${name}_FILE"
done

exec "$@"
