"""Hybrid search (pgvector HNSW + PostgreSQL full text, reciprocal rank fusion)."""
