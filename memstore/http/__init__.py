"""How the registry is served over HTTP by Django's own servers (see :mod:`.no_delay`)."""
