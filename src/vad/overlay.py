"""The overlay video of `vad detect --overlay`: what the detector saw and what it concluded, frame by frame.

Each input frame (as the model saw it, scaled up to at least 240 rows) with the pixel-level anomaly map as a heatmap
(the map the alarm score pools, `detect.map`: prediction error times the upsampled cluster distance, the paper's, or
the prediction error alone), under it a timeline of the last 10 s of scores with the threshold, and a red frame and
"ALARM" while the frame is above the threshold. Heat and timeline are scaled to the threshold, so the colours mean
the same in every scene: the timeline's dashed line is the threshold, its top twice the threshold, and a pixel is
fully red at `HEAT_SCALE` times the threshold.
"""

from __future__ import annotations

import math
import os
from collections import deque
from pathlib import Path

import numpy as np

__all__ = ["OverlayWriter", "HEAT_SCALE"]

HEAT_SCALE = 8.0  # a pixel this many times the threshold is the hottest colour
_STRIP = 64  # timeline height, pixels
_MIN_ROWS = 240
_RED = (0, 0, 255)  # BGR


class OverlayWriter:
    """Writes `path` (mp4) one frame per input frame; `close(keep)` renames it into place or removes it."""

    def __init__(self, path: Path, fps: float, threshold: float, frame_size: tuple[int, int]) -> None:
        import cv2

        height, width = frame_size
        self.scale = max(1, math.ceil(_MIN_ROWS / height))
        self.size = (width * self.scale, height * self.scale)  # (w, h) for OpenCV
        self.threshold, self.fps = threshold, fps
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.partial = path.with_name(path.stem + ".partial" + path.suffix)
        self.writer = cv2.VideoWriter(str(self.partial), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                      (self.size[0], self.size[1] + _STRIP))
        if not self.writer.isOpened():
            from vad.errors import DataError

            raise DataError(f"cannot write the overlay video {path}; give it an .mp4 name in a writable folder")
        self.history: deque[float] = deque(maxlen=max(2, int(round(10 * fps))))
        self.frames = 0

    def write(self, frame: np.ndarray, score: float, pixel_map: np.ndarray | None, alarm: bool) -> None:
        """Add one frame.

        Args:
            frame: uint8 (H, W, C), RGB or grayscale, as the model saw it.
            score: Its raw anomaly score (NaN: no full clip ends here).
            pixel_map: Its (H, W) anomaly map, or None.
            alarm: Whether it is above the threshold.
        """
        import cv2

        image = frame[:, :, 0] if frame.shape[2] == 1 else frame
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR if image.ndim == 2 else cv2.COLOR_RGB2BGR)
        image = cv2.resize(image, self.size, interpolation=cv2.INTER_NEAREST)
        self.history.append(score)
        if pixel_map is not None:
            heat = np.clip(pixel_map / (HEAT_SCALE * self._reference()), 0.0, 1.0).astype(np.float32)
            heat = cv2.resize(heat, self.size, interpolation=cv2.INTER_LINEAR)
            colour = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET).astype(np.float32)
            alpha = (0.65 * heat)[:, :, None]
            image = (image * (1 - alpha) + colour * alpha).astype(np.uint8)
        if alarm:
            cv2.rectangle(image, (0, 0), (self.size[0] - 1, self.size[1] - 1), _RED, 6)
            cv2.putText(image, "ALARM", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, _RED, 2, cv2.LINE_AA)
        self.writer.write(np.vstack([image, self._timeline()]))
        self.frames += 1

    def _reference(self) -> float:
        # the threshold; a threshold of 0 (everything an alarm) scales to the largest score shown instead
        if self.threshold > 0:
            return self.threshold
        return max((s for s in self.history if not math.isnan(s)), default=0.0) or 1.0

    def _timeline(self) -> np.ndarray:
        import cv2

        width = self.size[0]
        strip = np.full((_STRIP, width, 3), 24, np.uint8)
        for x in range(0, width, 12):  # the threshold, dashed
            cv2.line(strip, (x, _STRIP // 2), (min(x + 5, width - 1), _STRIP // 2), (160, 160, 160), 1)
        step, reference = width / (self.history.maxlen - 1), self._reference()
        previous = None
        for i, score in enumerate(self.history):
            if math.isnan(score):
                previous = None
                continue
            point = (int(i * step), int((_STRIP - 1) * (1 - min(score / reference, 2.0) / 2)))
            if previous is not None:
                cv2.line(strip, previous, point, _RED if score > self.threshold else (80, 220, 80), 2)
            previous = point
        seconds = self.frames / self.fps  # the time of this frame, as in events (frame / fps)
        cv2.putText(strip, f"{seconds:6.1f} s", (width - 80, _STRIP - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (220, 220, 220), 1, cv2.LINE_AA)
        return strip

    def close(self, keep: bool) -> None:
        """Finish the file: renamed into place (`keep`) or removed."""
        self.writer.release()
        if keep:
            os.replace(self.partial, self.path)
        else:
            self.partial.unlink(missing_ok=True)
