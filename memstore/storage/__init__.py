"""Content-addressed blob storage (local filesystem or S3) behind one interface."""
