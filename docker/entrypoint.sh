#!/usr/bin/env bash
# The one definition of how each process of the product runs: used by the Docker images,
# by `python3 dev.py start`, and by CI's stack test.
#   entrypoint.sh migrate | web | worker | beat | <any command>
set -euo pipefail

case "${1:-web}" in
  migrate)
    exec python manage.py migrate --noinput
    ;;
  web)
    exec gunicorn trial.wsgi:application \
      --bind "${BIND:-0.0.0.0:8000}" \
      --workers "${WEB_CONCURRENCY:-3}" \
      --timeout "${WEB_TIMEOUT:-60}" \
      --graceful-timeout 20 \
      --access-logfile - \
      --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-127.0.0.1}"
    ;;
  worker)
    exec celery -A trial worker \
      --loglevel "${LOG_LEVEL:-INFO}" \
      --concurrency "${CELERY_CONCURRENCY:-2}" \
      --hostname "worker@%h" \
      --without-gossip --without-mingle
    ;;
  beat)
    # Schedules live in the database (django-celery-beat), so beat keeps no state file.
    exec celery -A trial beat --loglevel "${LOG_LEVEL:-INFO}"
    ;;
  *)
    exec "$@"
    ;;
esac
