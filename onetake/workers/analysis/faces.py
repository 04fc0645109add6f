"""Face detection for posters and the crop path, offline only.

OpenCV 5 dropped ``CascadeClassifier`` from the main module along with the cascade files, and its DNN face
detector (YuNet) needs an ONNX model that no installed package ships. Until a model ships with onetake the
detector reports itself unavailable and the analysis falls back to saliency and motion (see README).
"""

from __future__ import annotations

import numpy as np


class FaceDetector:
    available = False

    def detect(self, gray: np.ndarray) -> list[tuple[float, float, float, float]]:
        """Faces in ``gray`` as (x, y, w, h) fractions of its size, largest first."""
        return []
