"""The local MemOS engine: store, search, scheduler, lifecycle, governance.

Pure logic over SQLite (WAL) and files; clock, embedder and model backend are
injected (see :mod:`runtime.engine.interfaces`). Never imports torch.
"""

from .interfaces import ActivationBackend, Clock, Embedder, KVBuild, LatencyProfile

__all__ = ["ActivationBackend", "Clock", "Embedder", "KVBuild", "LatencyProfile"]
