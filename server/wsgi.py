"""WSGI entry point (gunicorn server.wsgi). Not here: settings (:mod:`server.settings`)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "server.settings")
application = get_wsgi_application()
