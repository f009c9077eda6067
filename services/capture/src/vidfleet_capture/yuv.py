"""Frames as the decoder gives them, planar Y'CbCr, and JPEG-encoded straight from the planes.

A video decoder outputs Y'CbCr (4:2:0 for nearly every camera and file) and a JPEG stores Y'CbCr:
going through BGR, as `cv2.VideoCapture` + `cv2.imencode` do, converts every pixel twice for nothing.
Kept as planes, a frame costs one range fix-up (video is "limited range", Y' 16-235, JPEG is full
range, 0-255) and the encoder's own work. The planes are interpreted as BT.601, as JPEG decoders and
OpenCV's FFmpeg backend both do, so the pixels match what `cv2.VideoCapture` would have decoded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import simplejpeg

from vidfleet_capture.opencv import cv2

# Limited ("TV", "MPEG") range to full ("JPEG") range, ITU-R BT.601: Y' 16-235 and Cb/Cr 16-240 to 0-255.
_Y_SCALE = 255 / 219
_Y_OFFSET = -16 * _Y_SCALE
_C_SCALE = 255 / 224
_C_OFFSET = 128 - 128 * _C_SCALE


@dataclass(frozen=True)
class YuvImage:
    """One frame as three 8-bit planes; chroma may be subsampled (4:2:0, 4:2:2) or not (4:4:4).

    The planes may be views of the decoder's buffers: they are never written in place.
    """

    y: np.ndarray
    u: np.ndarray  # Cb
    v: np.ndarray  # Cr
    full_range: bool

    def __post_init__(self) -> None:
        for name in ("y", "u", "v"):
            plane = getattr(self, name)
            if plane.dtype != np.uint8 or plane.ndim != 2:
                raise ValueError(f"YuvImage.{name}: expected a 2-D uint8 plane, got {plane.dtype} with shape {plane.shape}")
        if self.u.shape != self.v.shape:
            raise ValueError(f"YuvImage: U and V planes differ in shape ({self.u.shape} and {self.v.shape})")
        if not (self.y.shape[0] >= self.u.shape[0] and self.y.shape[1] >= self.u.shape[1]):
            raise ValueError(f"YuvImage: chroma {self.u.shape} larger than luma {self.y.shape}")

    @property
    def width(self) -> int:
        return int(self.y.shape[1])

    @property
    def height(self) -> int:
        return int(self.y.shape[0])

    @property
    def nbytes(self) -> int:
        return self.y.size + self.u.size + self.v.size

    def resized(self, width: int, height: int) -> YuvImage:
        """Every plane scaled to `width` x `height`, chroma keeping its subsampling."""
        sx, sy = round(self.width / self.u.shape[1]), round(self.height / self.u.shape[0])
        chroma = (-(-width // sx), -(-height // sy))
        interpolation = cv2.INTER_AREA if width < self.width else cv2.INTER_LINEAR
        return YuvImage(
            cv2.resize(self.y, (width, height), interpolation=interpolation),
            cv2.resize(self.u, chroma, interpolation=interpolation),
            cv2.resize(self.v, chroma, interpolation=interpolation),
            self.full_range,
        )

    def to_full_range(self) -> YuvImage:
        if self.full_range:
            return self
        return YuvImage(_scale(self.y, _Y_SCALE, _Y_OFFSET), _scale(self.u, _C_SCALE, _C_OFFSET), _scale(self.v, _C_SCALE, _C_OFFSET), True)

    def jpeg(self, quality: int) -> bytes:
        """A baseline JFIF JPEG with this chroma subsampling (libjpeg-turbo; the GIL is released while it encodes)."""
        image = self.to_full_range()
        return simplejpeg.encode_jpeg_yuv_planes(image.y, image.u, image.v, quality=int(quality))


def _scale(plane: np.ndarray, scale: float, offset: float) -> np.ndarray:
    # One SIMD pass, rounded and clipped to 0-255 (saturate_cast); a new array: the input may be the decoder's.
    return cv2.addWeighted(plane, scale, plane, 0.0, offset)


def image_size(image: np.ndarray | YuvImage) -> tuple[int, int]:
    """(width, height) of a BGR array or a YuvImage."""
    if isinstance(image, YuvImage):
        return image.width, image.height
    return int(image.shape[1]), int(image.shape[0])
