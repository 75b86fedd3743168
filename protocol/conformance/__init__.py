"""MIP conformance vectors (1.x and 2.0) and their runner.

``vectors/`` holds packs and manifests, valid and invalid, each listed in
``vectors/index.json`` with its expected outcome (``ok`` with the manifest
digest and signer key ids, or a stable error code). ``generate.py`` writes
them deterministically (``python -m protocol.conformance.generate``);
``runner.py`` checks a reader against them (``python -m protocol.conformance``).
See SPEC.md, "Conformance".

Not here: the reader under test (:mod:`protocol.archive`, or any other
implementation plugged into the runner).
"""
