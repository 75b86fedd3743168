"""``python -m protocol.conformance``: run the conformance vectors (see runner.py)."""

from .runner import main

raise SystemExit(main())
