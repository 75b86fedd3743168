"""The test registry in a process of its own, for benchmarks: ``URL`` on stdout, then serve.

A registry never shares a client's process; in one process the server's
threads and the installer's would take turns on one interpreter lock, and the
figures would measure that. Run by ``bench/mip2_install.py``:

    python bench/_serve_registry.py NAMESPACE PUBLIC_KEY_TEXT PACK.memcube ...

It stops when its stdin closes (the benchmark ends). Bytes sent per blob:
``GET /_test/blob-bytes``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from protocol import PublicKey  # noqa: E402
from runtime.tests.fake_registry import FakeRegistry  # noqa: E402


def main() -> None:
    namespace, key_text, *packs = sys.argv[1:]
    registry = FakeRegistry(chunk=1024 * 1024, blob_urls=True)
    registry.add_key(namespace, PublicKey.from_text(key_text))
    for pack in packs:
        registry.publish(Path(pack))
    registry.start()
    print(registry.url, flush=True)
    sys.stdin.read()
    registry.stop()


if __name__ == "__main__":
    main()
