"""The coordinator's HTTP API (OpenAPI at /docs and /openapi.json).

Everything but /health, /livez and /metrics needs `Authorization: Bearer <VIDFLEET_API_TOKEN>`.
Errors are JSON `{"detail": "<one line>"}`.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from vidfleet_common.contracts import Queue, RedisKeys
from vidfleet_common.epoch import data_lost_message
from vidfleet_common.errors import VidfleetError
from vidfleet_common.fleet import celery_config, redis_client
from vidfleet_common.jobs import JobStore
from vidfleet_common.redis_connection import REPORT, report_failure
from vidfleet_common.settings import Settings, scrub_url
from vidfleet_coordinator.dispatch import SubmissionRefused, cancel_job, submit_job
from vidfleet_coordinator.finalizer import Finalizer, KnownJobs
from vidfleet_coordinator.fleet import QUEUES, WorkerCensus, queue_depths, queued_tasks, work_in_flight, worker_tasks
from vidfleet_coordinator.metrics import CoordinatorMetrics
from vidfleet_coordinator.reaper import INTERVAL_SECONDS, Reaper
from vidfleet_coordinator.reconciler import Reconciler
from vidfleet_coordinator.redis_watch import RedisWatch
from vidfleet_coordinator.streams import StreamExists, StreamRegistry
from vidfleet_coordinator.streams_api import streams_router
from vidfleet_coordinator.status import JobStatus, job_status

log = logging.getLogger("vidfleet.coordinator.api")
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class JobSubmission(BaseModel):
    inputs: list[str] = Field(description="Files or folders under the input roots, or http(s) URLs.", min_length=1)
    config: dict[str, Any] = Field(default_factory=dict, description="Job config (see docs/job-config.md).")


class QueueHealth(BaseModel):
    depth: int
    in_flight: int
    workers: list[str]


class Health(BaseModel):
    status: str = Field(
        description="ok, degraded (no worker on a queue with work, or Redis lost its data in the last hour) or down (Redis unreachable)."
    )
    redis: bool
    error: str | None = None
    redis_persistence: str | None = Field(None, description="aof, rdb, aof+rdb, none, or why it is unknown (read at start).")
    redis_data_lost_at: str | None = Field(None, description="When Redis last lost its data, within the last hour.")
    queues: dict[str, QueueHealth] = Field(default_factory=dict)


class TaskListing(BaseModel):
    workers: dict[str, dict[str, list[dict[str, Any]]]]
    queued: dict[str, list[dict[str, Any]]]
    queued_total: dict[str, int]


@dataclass
class Fleet:
    """What the routes need; built once per app."""

    settings: Settings
    store: JobStore
    celery_app: Any
    census: WorkerCensus
    metrics: CoordinatorMetrics
    registry: StreamRegistry
    watch: RedisWatch


def make_celery(settings: Settings) -> Any:
    from celery import Celery

    app = Celery("vidfleet-coordinator")
    app.conf.update(celery_config(settings))
    return app


def create_api(settings: Settings, *, run_background: bool = True) -> FastAPI:
    """The ASGI app, with the finalizer and the reaper on background threads.

    `settings.api_token` unset means no authentication (`serve` refuses that unless asked).
    """
    store = JobStore(redis_client(settings), RedisKeys(settings.key_prefix))
    celery_app = make_celery(settings)
    census = WorkerCensus(celery_app)
    registry = StreamRegistry(store.redis, store.keys)
    metrics = CoordinatorMetrics(store, census, registry)
    REPORT.configure("coordinator", metrics.redis_reconnects.inc)
    known = KnownJobs()
    watch = RedisWatch(store, known, metrics)
    fleet = Fleet(settings, store, celery_app, census, metrics, registry, watch)
    stop = threading.Event()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        threads = []
        try:
            watch.start()
        except Exception as exc:  # noqa: BLE001 - Redis not up yet: the watch starts on its first check
            report_failure(exc, log, "redis watch")
        if run_background:
            reaper = Reaper(store, celery_app, grace=settings.worker_lost_seconds, metrics=metrics)
            threads = [
                threading.Thread(target=Finalizer(store, metrics, known, celery_app).run_forever, args=(stop,), name="finalizer", daemon=True),
                threading.Thread(
                    target=reaper.run_forever, args=(stop, min(INTERVAL_SECONDS, settings.worker_lost_seconds / 3)), name="reaper", daemon=True
                ),
                threading.Thread(target=Reconciler(registry, celery_app).run_forever, args=(stop,), name="reconciler", daemon=True),
                threading.Thread(target=watch.run_forever, args=(stop,), name="redis-watch", daemon=True),
            ]
            for thread in threads:
                thread.start()
        yield
        stop.set()
        for thread in threads:
            thread.join(timeout=5)

    api = FastAPI(
        title="vidfleet coordinator",
        version="0.1.0",
        description="Submit video jobs to the vidfleet detector fleet, follow them, cancel them; fleet health and metrics.",
        lifespan=lifespan,
    )
    api.state.fleet = fleet
    _install_error_handlers(api)
    require_token = _auth(settings)
    _routes(api, fleet, require_token)
    api.include_router(streams_router(registry, settings, require_token))
    return api


def _auth(settings: Settings) -> Any:
    bearer = HTTPBearer(auto_error=False)
    token = settings.api_token.get_secret_value() if settings.api_token else None

    def require_token(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if token is None:
            return
        if credentials is None or not secrets.compare_digest(credentials.credentials.encode(), token.encode()):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, "missing or wrong API token (Authorization: Bearer ...)", headers={"WWW-Authenticate": "Bearer"}
            )

    return require_token


def _install_error_handlers(api: FastAPI) -> None:
    @api.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return JSONResponse({"detail": f"{where}: {first.get('msg')}" if where else str(first.get("msg"))}, status_code=422)

    @api.exception_handler(VidfleetError)
    async def refused(_: Request, exc: VidfleetError) -> JSONResponse:
        code = status.HTTP_400_BAD_REQUEST
        if isinstance(exc, SubmissionRefused):
            code = status.HTTP_403_FORBIDDEN
        elif isinstance(exc, StreamExists):
            code = status.HTTP_409_CONFLICT
        return JSONResponse({"detail": str(exc)}, status_code=code)

    @api.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        if _is_redis_error(exc):
            return JSONResponse({"detail": f"redis unreachable: {scrub_url(str(exc))}"}, status_code=503)
        log.exception("unexpected error")
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}: {scrub_url(str(exc))}"}, status_code=500)


def _iso(timestamp: float | None) -> str | None:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds") if timestamp is not None else None


def _is_redis_error(exc: BaseException) -> bool:
    from redis.exceptions import RedisError

    from kombu.exceptions import OperationalError

    return isinstance(exc, (RedisError, OperationalError, ConnectionError))


def _routes(api: FastAPI, fleet: Fleet, require_token: Any) -> None:
    store = fleet.store
    auth = [Depends(require_token)]

    def record_or_404(job_id: str) -> Any:
        record = store.get(job_id)
        if record is None:
            fleet.watch.check()  # Redis lost its data just now? Then the jobs it took are written back first
            record = store.get(job_id)
        if record is None:
            lost_at = fleet.watch.data_lost_at()
            note = f" ({data_lost_message(lost_at)}: jobs submitted before then are gone)" if lost_at else ""
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job '{job_id}'{note}")
        return record

    @api.get("/livez", tags=["health"], summary="The process is up (liveness probe; does not touch Redis).")
    def livez() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/health", response_model=Health, tags=["health"], summary="Redis reachable, workers per queue, queue depths.")
    def health(response: Response) -> Health:
        try:
            depth, flight = queue_depths(store.redis), work_in_flight(store.redis, store.keys)
        except Exception as exc:  # noqa: BLE001
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
            return Health(status="down", redis=False, error=f"redis unreachable: {scrub_url(str(exc))}")
        persistence = fleet.watch.persistence[1]
        lost_at = fleet.watch.data_lost_at()
        lost = {"redis_persistence": persistence, "redis_data_lost_at": _iso(lost_at)}
        try:
            workers = fleet.census.workers_by_queue(fresh=True)
        except Exception as exc:  # noqa: BLE001
            return Health(status="degraded", redis=True, error=f"worker ping failed: {scrub_url(str(exc))}", **lost)
        queues = {q.value: QueueHealth(depth=depth[q.value], in_flight=flight[q.value], workers=workers.get(q.value, [])) for q in QUEUES}
        starving = [name for name, q in queues.items() if q.in_flight and not q.workers]
        problems = [f"work waiting but no live worker on: {', '.join(starving)}"] if starving else []
        if lost_at is not None:
            problems.insert(0, f"{data_lost_message(lost_at)}; the jobs running then failed")
        return Health(status="degraded" if problems else "ok", redis=True, error="; ".join(problems) or None, queues=queues, **lost)

    @api.get("/metrics", tags=["health"], summary="Prometheus metrics of the fleet as a whole.")
    def metrics() -> Response:
        return Response(fleet.metrics.exposition(), media_type=PROMETHEUS_CONTENT_TYPE)

    @api.post("/jobs", response_model=JobStatus, status_code=status.HTTP_201_CREATED, dependencies=auth, tags=["jobs"])
    def submit(submission: JobSubmission) -> JobStatus:
        """Record a job and dispatch one `detect` task per video; the coordinator writes result.json when all are done."""
        record = submit_job(store, fleet.celery_app, fleet.settings, submission.inputs, submission.config, epoch=fleet.watch.current_epoch())
        fleet.metrics.jobs_submitted.inc()
        log.info("job %s submitted: %d videos", record.job_id, len(record.videos))
        return job_status(store, record)

    @api.get("/jobs", response_model=list[JobStatus], dependencies=auth, tags=["jobs"])
    def jobs(limit: int = Query(50, ge=1, le=1000)) -> list[JobStatus]:
        """The most recent jobs first, without their per-video lists."""
        return [job_status(store, r, with_videos=False) for r in store.get_many(store.list_ids(limit))]

    @api.get("/jobs/{job_id}", response_model=JobStatus, dependencies=auth, tags=["jobs"])
    def job(job_id: str) -> JobStatus:
        return job_status(store, record_or_404(job_id))

    @api.post("/jobs/{job_id}/cancel", response_model=JobStatus, status_code=status.HTTP_202_ACCEPTED, dependencies=auth, tags=["jobs"])
    def cancel(job_id: str) -> JobStatus:
        """Queued videos are revoked; running ones stop between batches; the job ends `cancelled`."""
        record = cancel_job(store, fleet.celery_app, record_or_404(job_id))
        return job_status(store, record)

    @api.get("/tasks", response_model=TaskListing, dependencies=auth, tags=["fleet"])
    def tasks() -> TaskListing:
        """Active and reserved tasks per worker, and the tasks still waiting in each queue."""
        queued = {q.value: queued_tasks(store.redis, q) for q in (Queue.DETECT, Queue.CAPTURE)}
        return TaskListing(workers=worker_tasks(fleet.celery_app), queued=queued, queued_total=queue_depths(store.redis))
