"""Views of the web marketplace, one module per area; all thin over services/selectors."""
