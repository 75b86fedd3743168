"""Packs, immutable versions, publishing, yanking, deprecation, entitlements."""
