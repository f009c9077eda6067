"""An s3:// video as the decoder sees it: a presigned HTTPS URL that FFmpeg reads with ranged requests.

The worker never downloads the object: memory stays flat whatever its size. A fresh URL is signed for every
open, so that a reconnect after an endpoint outage (or past the URL's lifetime) works too.
"""

from __future__ import annotations

from vidfleet_common.buckets import S3Url
from vidfleet_common.errors import VideoOpenError
from vidfleet_common.objects import StorageError, default_store


class ObjectOpenError(VideoOpenError):
    """The object cannot be reached: the kind says why (input, access, credentials, storage)."""

    def __init__(self, error: StorageError) -> None:
        super().__init__(str(error))
        self.kind = error.kind


def signed_url(source: str) -> str:
    """Check that the object is there and readable (one line if not), then sign a GET URL for it."""
    url = S3Url.parse(source)
    store = default_store()
    try:
        head = store.head(url)
        if int(head.get("ContentLength", 0)) == 0:
            raise VideoOpenError(f"{source}: object is empty (0 bytes)")
        return store.presigned_get(url)
    except StorageError as exc:
        raise ObjectOpenError(exc) from None
