"""Deliver counting events to each stream's webhook: a JSON POST per batch, from the event stream in Redis.

The sink runs on its own thread and reads `…:events:<stream>` after a cursor kept in Redis, so it never
blocks the detector and a replacement detector carries on where its predecessor stopped. Delivery is
at least once: a batch is POSTed again until it is acknowledged with a 2xx, with exponential backoff
(0.5 s doubling to 30 s) in between; every event carries its entry `id` and its number `n`, for the
receiver to drop repeats and to see gaps. Events trimmed from the event stream (`max_events`) before
they could be delivered are counted as dropped.

Body: {"stream": name, "events": [{...event, "id": "1700000000000-0"}, ...]}.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vidfleet_common.contracts import RedisKeys
from vidfleet_common.counts import event_from_fields
from vidfleet_common.settings import scrub_url
from vidfleet_common.streams import StreamSpec

log = logging.getLogger("vidfleet.detector.live.webhook")

BATCH = 100
TIMEOUT_S = 5.0
BACKOFF_FIRST_S, BACKOFF_MAX_S = 0.5, 30.0
IDLE_WAIT_S = 0.2

# KEYS: lease, cursor. ARGV: holder, cursor JSON. Only the stream's holder moves its cursor.
_SAVE_CURSOR = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('set', KEYS[2], ARGV[2])
return 1
"""


@dataclass
class _Target:
    cursor: dict[str, Any] | None = None  # {"id": last delivered entry id, "n": its event number}
    failures: int = 0
    retry_at: float = 0.0


class WebhookSink:
    def __init__(
        self, redis: Any, keys: RedisKeys, holder: str, streams: Callable[[], dict[str, StreamSpec]], *,
        metrics: Any = None, batch: int = BATCH, timeout_s: float = TIMEOUT_S,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.holder = holder
        self.streams = streams
        self.metrics = metrics
        self.batch = batch
        self.timeout_s = timeout_s
        self._targets: dict[str, _Target] = {}
        self._save = redis.register_script(_SAVE_CURSOR)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                if self.step() == 0:
                    stop.wait(IDLE_WAIT_S)
            except Exception as exc:  # noqa: BLE001 - Redis restarting: try again
                log.warning("webhook sink: %s: %s", type(exc).__name__, scrub_url(str(exc)))
                stop.wait(1.0)

    def step(self) -> int:
        """One pass over the held streams with a webhook: POST what each has waiting. Returns events delivered."""
        held = {name: spec for name, spec in self.streams().items() if spec.webhook}
        for name in [n for n in self._targets if n not in held]:
            del self._targets[name]
        delivered = 0
        now = time.monotonic()
        for name, spec in held.items():
            target = self._targets.get(name)
            if target is None:
                target = self._targets[name] = _Target()
                self._series_at_zero(name)
            if now >= target.retry_at:
                delivered += self._deliver(name, spec, target)
        return delivered

    def _deliver(self, name: str, spec: StreamSpec, target: _Target) -> int:
        if target.cursor is None:
            raw = self.redis.get(self.keys.webhook_cursor(name))
            target.cursor = json.loads(raw) if raw else {"id": "0-0", "n": 0}
        entries = self.redis.xrange(self.keys.events(name), min=f"({target.cursor['id']}", count=self.batch)
        if not entries:
            return 0
        events = [{**event_from_fields(fields), "id": _text(entry_id)} for entry_id, fields in entries]
        gap = int(events[0].get("n", target.cursor["n"] + 1)) - target.cursor["n"] - 1
        if gap > 0:
            log.warning("stream %s: %d events trimmed before the webhook got them", name, gap)
            self._count_events(name, "dropped", gap)
        body = json.dumps({"stream": name, "events": events}, separators=(",", ":")).encode()
        error = self._post(spec.webhook or "", body)
        if error is not None:
            target.failures += 1
            target.retry_at = time.monotonic() + min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (target.failures - 1))
            self._count_request(name, "failed")
            if target.failures == 1 or target.failures % 10 == 0:
                log.warning("stream %s: webhook %s failed (%s), attempt %d; retrying", name, scrub_url(spec.webhook or ""), error, target.failures)
            if gap > 0:  # counted once: start after the gap next time
                target.cursor = {"id": target.cursor["id"], "n": int(events[0].get("n", 1)) - 1}
            return 0
        target.failures, target.retry_at = 0, 0.0
        target.cursor = {"id": events[-1]["id"], "n": int(events[-1].get("n", target.cursor["n"] + len(events)))}
        self._save(keys=[self.keys.stream_lease(name), self.keys.webhook_cursor(name)], args=[self.holder, json.dumps(target.cursor)])
        self._count_request(name, "delivered")
        self._count_events(name, "delivered", len(events))
        return len(events)

    def _post(self, url: str, body: bytes) -> str | None:
        """None when the webhook answered 2xx, else why not (one line)."""
        request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310 - http(s) only (StreamSpec)
                return None if 200 <= response.status < 300 else f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            return str(getattr(exc, "reason", exc))

    def _series_at_zero(self, stream: str) -> None:
        """rate() and increase() see a stream's first failure only when its series already exist."""
        if self.metrics is not None:
            for outcome in ("delivered", "failed"):
                self.metrics.webhook_requests.labels(stream=stream, outcome=outcome)
            for outcome in ("delivered", "dropped"):
                self.metrics.webhook_events.labels(stream=stream, outcome=outcome)

    def _count_request(self, stream: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.webhook_requests.labels(stream=stream, outcome=outcome).inc()

    def _count_events(self, stream: str, outcome: str, count: int) -> None:
        if self.metrics is not None:
            self.metrics.webhook_events.labels(stream=stream, outcome=outcome).inc(count)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
