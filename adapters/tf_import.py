"""Import TensorFlow and Keras once, quietly: TF's C++ start-up lines go to a silenced stderr."""
from __future__ import annotations

import os
import sys
from typing import Any


def import_tf() -> tuple[Any, Any]:
    """(tensorflow, keras). The first call costs seconds; later calls are free."""
    if "tensorflow" in sys.modules and "keras" in sys.modules:
        return sys.modules["tensorflow"], sys.modules["keras"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)  # absl prints oneDNN notices before TF_CPP_MIN_LOG_LEVEL takes effect
    try:
        import keras
        import tensorflow as tf
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return tf, keras
