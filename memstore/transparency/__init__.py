"""The registry's transparency log: an append-only RFC 6962 Merkle log of trust events.

SPEC section 16.2. Not here: the tree rules (:mod:`protocol.merkle`).
"""
