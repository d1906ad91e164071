"""A camera for Chromium to film: a Y4M clip of a QR code, for `--use-file-for-fake-video-
capture` (Chromium plays it in a loop as the webcam)."""

from __future__ import annotations

from pathlib import Path

import segno

WIDTH, HEIGHT = 640, 480
_BLACK, _WHITE, _NEUTRAL = 16, 235, 128  # video luma and chroma levels


def qr_clip(payload: str, path: Path, frames: int = 10) -> Path:
    """The QR code of `payload` filling half the picture (as a card held to a tablet)."""
    matrix = [list(row) for row in segno.make(payload, error="m").matrix]
    quiet = 4
    side = len(matrix) + 2 * quiet
    scale = min(WIDTH, HEIGHT) // 2 // side
    left, top = (WIDTH - side * scale) // 2, (HEIGHT - side * scale) // 2
    luma = bytearray([_WHITE]) * (WIDTH * HEIGHT)
    for r, row in enumerate(matrix):
        for c, dark in enumerate(row):
            if not dark:
                continue
            for dy in range(scale):
                start = (top + (r + quiet) * scale + dy) * WIDTH + left + (c + quiet) * scale
                luma[start : start + scale] = bytes([_BLACK]) * scale
    chroma = bytes([_NEUTRAL]) * (WIDTH // 2 * HEIGHT // 2)
    frame = b"FRAME\n" + bytes(luma) + chroma + chroma
    header = f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F10:1 Ip A1:1 C420jpeg\n".encode()
    path.write_bytes(header + frame * frames)
    return path
