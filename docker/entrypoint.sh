#!/bin/sh
# Container entry point: `web` (gunicorn), `worker` (Celery), `migrate`, or any command.
set -eu
case "${1:-web}" in
  web)
    exec gunicorn server.wsgi:application \
      --bind 0.0.0.0:8000 \
      --workers "${GUNICORN_WORKERS:-2}" \
      --threads "${GUNICORN_THREADS:-4}" \
      --timeout "${GUNICORN_TIMEOUT:-300}" \
      --max-requests 2000 --max-requests-jitter 200 \
      --access-logfile -
    ;;
  worker)
    exec celery -A server worker \
      --loglevel=INFO \
      --concurrency "${CELERY_CONCURRENCY:-2}" \
      -Q "${MEMSTORE_CELERY_QUEUE:-memstore}"
    ;;
  beat)
    exec celery -A server beat --loglevel=INFO
    ;;
  migrate)
    exec python manage.py migrate --noinput
    ;;
  *)
    exec "$@"
    ;;
esac
