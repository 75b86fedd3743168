"""The composition root as a Django app, only so that ``manage.py memstore_up`` is found.

Not here: models (the site has none of its own) or anything a domain app owns.
"""

from django.apps import AppConfig


class ServerConfig(AppConfig):
    name = "server"
    label = "server"
    default_auto_field = "django.db.models.BigAutoField"
