"""What the fleet looks like right now: queue depths, work in flight, live workers, tasks.

Celery's Redis transport keeps each queue as a list named after the queue (new messages pushed
on the left, taken from the right) and a message taken by a worker moves to the `unacked` hash
until it is acknowledged; so LLEN is "waiting", and the in-flight sorted set is vidfleet's own
count of queued + reserved + running work.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from vidfleet_common.contracts import Queue, RedisKeys

# The queues Celery workers consume (the coordinator queue has no Celery worker yet).
QUEUES: tuple[Queue, ...] = (Queue.DETECT, Queue.CAPTURE)
QUEUED_TASKS_SHOWN = 100


def queue_depths(redis: Any, queues: tuple[Queue, ...] = QUEUES) -> dict[str, int]:
    pipe = redis.pipeline()
    for queue in queues:
        pipe.llen(queue.value)
    return {q.value: int(n) for q, n in zip(queues, pipe.execute())}


def work_in_flight(redis: Any, keys: RedisKeys, queues: tuple[Queue, ...] = QUEUES) -> dict[str, int]:
    pipe = redis.pipeline()
    for queue in queues:
        pipe.zcard(keys.in_flight(queue))
    return {q.value: int(n) for q, n in zip(queues, pipe.execute())}


def queued_tasks(redis: Any, queue: Queue, limit: int = QUEUED_TASKS_SHOWN) -> list[dict[str, Any]]:
    """The next `limit` messages waiting in `queue`, oldest first (read without taking them)."""
    raw = redis.lrange(queue.value, -limit, -1)
    tasks = []
    for item in reversed(raw):
        try:
            message = json.loads(item)
            headers = message.get("headers", {})
            tasks.append({"id": headers.get("id"), "name": headers.get("task"), "args": headers.get("kwargsrepr")})
        except (ValueError, AttributeError):
            tasks.append({"id": None, "name": None, "args": "(not a Celery message)"})
    return tasks


@dataclass
class WorkerCensus:
    """Live workers by queue, from a Celery broadcast (`active_queues`, a ping that says which queues).

    A broadcast waits `timeout` seconds for replies, so the answer is cached for `max_age` seconds.
    """

    celery_app: Any
    timeout: float = 1.0
    max_age: float = 5.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _at: float = float("-inf")
    _workers: dict[str, list[str]] = field(default_factory=dict)

    def workers_by_queue(self, *, fresh: bool = False) -> dict[str, list[str]]:
        with self._lock:
            if fresh or time.monotonic() - self._at > self.max_age:
                self._workers = self._ask()
                self._at = time.monotonic()
            return {q: list(w) for q, w in self._workers.items()}

    def _ask(self) -> dict[str, list[str]]:
        # A connection of its own, not one from the app's pool: a pooled one may be from before a Redis restart.
        with self.celery_app.connection_for_write() as connection:
            replies = self.celery_app.control.inspect(timeout=self.timeout, connection=connection).active_queues() or {}
        by_queue: dict[str, list[str]] = {q.value: [] for q in QUEUES}
        for worker, queues in sorted(replies.items()):
            for queue in queues or []:
                by_queue.setdefault(queue.get("name", "?"), []).append(worker)
        return by_queue


def worker_tasks(celery_app: Any, timeout: float = 1.0) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Active and reserved tasks per worker (a Celery broadcast)."""
    inspect = celery_app.control.inspect(timeout=timeout)
    shown: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for kind, replies in (("active", inspect.active()), ("reserved", inspect.reserved())):
        for worker, tasks in (replies or {}).items():
            shown.setdefault(worker, {"active": [], "reserved": []})[kind] = [
                {"id": t.get("id"), "name": t.get("name"), "args": _kwargs_repr(t), "worker_pid": t.get("worker_pid")}
                for t in tasks
            ]
    return shown


def _kwargs_repr(task: dict[str, Any]) -> str | None:
    kwargs = task.get("kwargs")
    if isinstance(kwargs, dict) and isinstance(kwargs.get("request"), dict):
        request = kwargs["request"]
        return f"job {request.get('job_id')} video {request.get('video', {}).get('name')}"
    return None if kwargs is None else str(kwargs)[:200]
