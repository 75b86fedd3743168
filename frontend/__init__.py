"""The web marketplace: server-rendered pages over the registry's and commerce's services.

Views are thin: they parse forms, call ``memstore.*.services``/``selectors``
and render templates. No business logic lives here; no JavaScript is needed
for any flow (small scripts only enhance: copy buttons, ingestion polling).
"""
