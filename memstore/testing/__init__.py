"""Test support for the registry: real-service fixtures (a pytest plugin) and factories."""
