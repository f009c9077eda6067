"""Read one chunk of a video, frame-accurately, on a background thread (the FrameReader of a chunk).

Seeks to the chunk's keyframe (`read_from`), decodes forward and finds each frame's index from its
timestamp (vidfleet_common.chunks), drops frames before `read_from`, and stops after the chunk's last
frame. Should the demuxer land after the wanted frame (an index that disagrees with the probe), it seeks
further back, and finally reads from the start: a missing frame is never silently skipped.
"""

from __future__ import annotations

from collections.abc import Iterator

import av

from vidfleet_common.chunks import Chunk, clock
from vidfleet_common.errors import VideoError, VideoOpenError
from vidfleet_detector.decode import BackgroundFrames, DecodedFrame, VideoInfo

# Seek this many seconds further back each time the demuxer lands after the wanted frame.
_BACKOFF_SECONDS = (0.0, 2.0, 10.0)


class ChunkReader(BackgroundFrames):
    """Every `stride`-th frame (by index in the whole video) of [chunk.read_from, chunk.end).

    `frames_read` counts frames of that range read so far; `info.total_frames` is the range's length.
    """

    def __init__(self, source: str, chunk: Chunk, *, stride: int = 1, buffer: int = 8, display: str | None = None) -> None:
        self.chunk = chunk
        self._display = display or source
        self._stride = stride
        try:
            self._container = av.open(source)
            stream = self._container.streams.video[0]
        except (av.FFmpegError, OSError, IndexError) as exc:
            raise VideoOpenError(f"{self._display}: cannot open {chunk.span()}: {exc}") from None
        stream.thread_type = "AUTO"
        self._stream = stream
        self.info = VideoInfo(width=stream.codec_context.width, height=stream.codec_context.height, fps=chunk.fps,
                              total_frames=chunk.end - chunk.read_from)
        self.frames_read = 0
        self._start(buffer, "vidfleet-chunk-decode")

    def _index(self, pts: int) -> int:
        return round((pts - self.chunk.first_pts) / self.chunk.frame_pts)

    def _frames(self) -> Iterator[av.VideoFrame]:
        """Decoded frames from at or before read_from, in presentation order."""
        chunk = self.chunk
        for back in (*_BACKOFF_SECONDS, None):
            if chunk.read_from == 0 or back is None:
                self._container.seek(0)
            else:
                target = chunk.seek_pts - round(back * chunk.fps * chunk.frame_pts)
                self._container.seek(max(target, chunk.first_pts), stream=self._stream, backward=True, any_frame=False)
            frames = self._container.decode(self._stream)
            first = next((f for f in frames if f.pts is not None), None)
            if first is None:
                return
            if self._index(first.pts) <= chunk.read_from or back is None or chunk.read_from == 0:
                yield first
                yield from frames
                return

    def _run(self) -> None:
        chunk, current = self.chunk, None
        try:
            expected = chunk.read_from
            for frame in self._frames():
                if self._stop.is_set():
                    break
                if frame.pts is None:
                    continue
                index = self._index(frame.pts)
                current = index
                if index < expected:
                    continue  # before the chunk, or a frame seen again
                if index >= chunk.end:
                    break
                if index > expected:
                    raise VideoError(f"{self._display}: {chunk.span()}: frame {expected} missing (next decoded: {index})")
                expected = index + 1
                self.frames_read = index + 1 - chunk.read_from
                if index % self._stride == 0 and not self._put(DecodedFrame(index, frame.to_ndarray(format="bgr24"))):
                    break
                if self._stop.is_set():
                    break
            if not self._stop.is_set() and expected < chunk.end:
                raise VideoError(f"{self._display}: {chunk.span()}: the video ended at frame {expected} of {chunk.end}")
        except VideoError as exc:
            self._put(exc)
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, which reports it
            at = f" at {clock(current / chunk.fps)} (frame {current})" if current is not None else ""
            self._put(VideoError(f"{self._display}: {chunk.span()}: decoding failed{at}: {exc}"))
        finally:
            self._container.close()
            self._end()
