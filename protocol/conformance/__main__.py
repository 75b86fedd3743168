"""``python -m protocol.conformance``: run the conformance vectors.

Not here: the runner itself (runner.py).
"""

from .runner import main

raise SystemExit(main())
