"""REST glue under /api/v1/: thin views, input/output serializers, one error handler."""
