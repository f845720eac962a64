#!/usr/bin/env bash
# The one definition of how each process of the product runs: used by the Docker images,
# by `python3 dev.py start`, and by CI's stack test.
#   entrypoint.sh migrate | web | worker | beat | backup | <any command>
set -euo pipefail

case "${1:-web}" in
  migrate)
    python manage.py migrate --noinput
    # Two roles in production (README "Database roles"): the owner migrates, then grants the
    # application's role, which owns no table and so cannot turn triggers off.
    if [ -n "${DATABASE_APP_USER:-}" ]; then
      exec python manage.py grant_app_role "$DATABASE_APP_USER"
    fi
    ;;
  web)
    # System checks first: among them, that the keys match the data's (trial.E010); gunicorn
    # starts only if they pass.
    python manage.py check
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
  backup)
    # A backup archive every BACKUP_INTERVAL_HOURS into BACKUP_DIR, keeping BACKUP_KEEP_DAYS of them
    # (README: Backups and restore). A failed backup is retried at the next interval, and says so.
    dir="${BACKUP_DIR:-/backups}"
    while true; do
      python manage.py backup --output "$dir/walkback-$(date -u +%Y%m%dT%H%M%SZ).tar" \
        || echo "backup failed: the next try is in ${BACKUP_INTERVAL_HOURS:-24} h" >&2
      find "$dir" -maxdepth 1 -name 'walkback-*.tar' -mtime "+${BACKUP_KEEP_DAYS:-14}" -delete
      sleep "$(( ${BACKUP_INTERVAL_HOURS:-24} * 3600 ))"
    done
    ;;
  *)
    exec "$@"
    ;;
esac
