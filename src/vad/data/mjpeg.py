"""An HTTP MJPEG stream of given frames on 127.0.0.1: a stand-in camera for tests and latency benchmarks.

    server = MjpegServer(frames, fps=25)          # BGR uint8 frames, served in a loop
    vad detect server.url --model ...             # any MJPEG client (OpenCV, a browser) reads it
    server.close()

`per_connection` frames are sent per connection before it is dropped, for `connections` connections
(later ones get 503): a camera that drops and one that is gone. `sent[i]` is the monotonic time at which
frame i left (for latency).
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Sequence

import numpy as np

__all__ = ["MjpegServer"]


class MjpegServer:
    """Serves `frames` as multipart JPEG (`multipart/x-mixed-replace`), paced at `fps` (0: as fast as read)."""

    def __init__(self, frames: Sequence[np.ndarray], *, fps: float = 0.0, per_connection: int = 10**9,
                 connections: int = 10**9, credentials: str = "") -> None:
        import cv2

        self.jpegs = [cv2.imencode(".jpg", frame)[1].tobytes() for frame in frames]
        self.per_connection, self.connections, self.fps = per_connection, connections, fps
        self.opened = 0
        self.sent: list[float] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                owner.opened += 1
                if owner.opened > owner.connections:
                    self.send_error(503)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                start = time.monotonic()
                try:
                    for k in range(owner.per_connection):
                        if owner.fps:  # paced against the clock, not by sleeping a fixed time after each frame
                            time.sleep(max(0.0, start + k / owner.fps - time.monotonic()))
                        jpeg = owner.jpegs[len(owner.sent) % len(owner.jpegs)]
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                         % len(jpeg) + jpeg + b"\r\n")
                        self.wfile.flush()
                        owner.sent.append(time.monotonic())
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        user = f"{credentials}@" if credentials else ""
        self.url = f"http://{user}127.0.0.1:{self.server.server_port}/stream.mjpg"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        """The port it listens on."""
        return self.server.server_port

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
