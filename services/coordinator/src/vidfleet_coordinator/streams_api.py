"""HTTP routes for live streams: add, list, remove, and follow a stream's tracks and counting events (NDJSON)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import StreamingResponse

from vidfleet_common.counts import event_from_fields
from vidfleet_common.settings import Settings
from vidfleet_common.streams import TrackMessage
from vidfleet_coordinator.streams import StreamRegistry, StreamStatus, make_spec

FOLLOW_BLOCK_MS = 1000


def streams_router(registry: StreamRegistry, settings: Settings, require_token: Any) -> APIRouter:
    router = APIRouter(prefix="/streams", tags=["streams"], dependencies=[Depends(require_token)])

    def spec_or_404(name: str) -> Any:
        spec = registry.get(name)
        if spec is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no stream '{name}'")
        return spec

    @router.post("", response_model=StreamStatus, status_code=status.HTTP_201_CREATED)
    def add(body: dict[str, Any]) -> StreamStatus:
        """Want a stream: {"name", "source", "fps"?, "config"?, ...} (see StreamSpec). The reconciler starts its capture."""
        spec = make_spec(body, settings)
        registry.add(spec)
        return registry.status(spec)

    @router.get("", response_model=list[StreamStatus])
    def list_streams() -> list[StreamStatus]:
        """Every wanted stream: capture state and fps, detector and its fps, lag, latency, errors."""
        return registry.statuses()

    @router.get("/{name}", response_model=StreamStatus)
    def one(name: str) -> StreamStatus:
        return registry.status(spec_or_404(name))

    @router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
    def remove(name: str) -> None:
        """Unwant a stream: its capture stops and its detector releases the lease."""
        spec_or_404(name)
        registry.remove(name)

    @router.get("/{name}/tracks")
    def tracks(
        name: str,
        follow: bool = Query(False, description="Keep the response open and send tracks as they arrive."),
        last: int = Query(10, ge=0, le=10_000, description="Start with this many of the latest messages."),
        seconds: float | None = Query(None, gt=0, description="With follow: stop after this long."),
    ) -> StreamingResponse:
        """Track messages as NDJSON, one per processed frame: {seq, ts, pts, tracks: [...]}."""
        spec_or_404(name)
        return StreamingResponse(_lines(registry, registry.keys.tracks(name), name, follow, last, seconds, _track_line), media_type="application/x-ndjson")

    @router.get("/{name}/events")
    def events(
        name: str,
        follow: bool = Query(False, description="Keep the response open and send events as they happen."),
        last: int = Query(10, ge=0, le=10_000, description="Start with this many of the latest events."),
        seconds: float | None = Query(None, gt=0, description="With follow: stop after this long."),
    ) -> StreamingResponse:
        """Counting events as NDJSON, one per crossing, zone entry or exit (see vidfleet_common.counts)."""
        spec_or_404(name)
        return StreamingResponse(_lines(registry, registry.keys.events(name), name, follow, last, seconds, _event_line), media_type="application/x-ndjson")

    return router


def _lines(
    registry: StreamRegistry, key: str, name: str, follow: bool, last: int, seconds: float | None, line: Callable[[Any, Any], bytes]
) -> Iterator[bytes]:
    """The last `last` entries of the Redis stream `key`, then (with follow) the new ones, one NDJSON line each."""
    redis = registry.redis
    cursor = "0-0"
    if last:
        entries = list(reversed(redis.xrevrange(key, count=last)))
        for entry_id, fields in entries:
            yield line(entry_id, fields)
            cursor = entry_id
    else:
        newest = redis.xrevrange(key, count=1)
        cursor = newest[0][0] if newest else "0-0"
    if not follow:
        return
    deadline = time.monotonic() + seconds if seconds else None
    while deadline is None or time.monotonic() < deadline:
        for _, messages in redis.xread({key: cursor}, block=FOLLOW_BLOCK_MS, count=500) or []:
            for entry_id, fields in messages:
                yield line(entry_id, fields)
                cursor = entry_id
        if registry.get(name) is None:
            return  # the stream was removed


def _event_line(entry_id: Any, fields: dict[Any, Any]) -> bytes:
    event = {**event_from_fields(fields), "id": entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)}
    return (json.dumps(event, separators=(",", ":")) + "\n").encode()


def _track_line(_entry_id: Any, fields: dict[Any, Any]) -> bytes:
    message = TrackMessage.from_fields(fields)
    payload = {"seq": message.seq, "ts": message.ts, "pts": message.pts, "tracks": [t.as_json() for t in message.tracks]}
    return (json.dumps(payload, separators=(",", ":")) + "\n").encode()
