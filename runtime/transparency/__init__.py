"""The client side of the registry's transparency log (SPEC section 16.2).

:class:`LogVerifier` keeps the last tree head it verified per registry under
``$MEMOS_HOME/transparency/``, accepts a newer one only with a consistency
proof, checks that what it installs is included, and replays the whole log
for ``memos log verify``. Not here: the tree rules (:mod:`protocol.merkle`).
"""

from .install_check import check_install_logged
from .source import HttpLog, LogSource
from .verifier import KEY_EVENTS, LogEntryView, LogError, LogVerifier

__all__ = [
    "KEY_EVENTS",
    "HttpLog",
    "LogEntryView",
    "LogError",
    "LogSource",
    "LogVerifier",
    "check_install_logged",
]
