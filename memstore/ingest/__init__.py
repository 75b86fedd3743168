"""The ingestion pipeline: after a publish commits, extract, embed and index memories."""
