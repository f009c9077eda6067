"""The coordinator's /metrics: the fleet as a whole. Gauges are read from Redis at scrape time."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from vidfleet_common import metric_names as m
from vidfleet_common.jobs import JobState, JobStore
from vidfleet_common.redis_connection import report_failure
from vidfleet_common.results import JobResult, VideoOutcome
from vidfleet_common.worker_metrics import create_metric
from vidfleet_coordinator.fleet import WorkerCensus, queue_depths, work_in_flight
from vidfleet_coordinator.streams import StreamRegistry

log = logging.getLogger("vidfleet.coordinator.metrics")
disable_created_metrics()  # `_created` series double every counter and no dashboard reads them


class FleetCollector:
    """Queue depth, work in flight, jobs by state, live workers and Redis reachability, per scrape."""

    def __init__(self, store: JobStore, census: WorkerCensus | None, registry: StreamRegistry | None = None) -> None:
        self.store = store
        self.census = census
        self.registry = registry

    def describe(self) -> list[Metric]:
        return []  # collected lazily: registering must not touch Redis

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(m.REDIS_UP.name, m.REDIS_UP.help)
        try:
            depth, flight = queue_depths(self.store.redis), work_in_flight(self.store.redis, self.store.keys)
            jobs = self.store.count_by_state()
        except Exception as exc:  # noqa: BLE001 - Redis down: say so, export what we can
            report_failure(exc, log, "metrics")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield _labelled(m.QUEUE_DEPTH, depth)
        yield _labelled(m.WORK_IN_FLIGHT, flight)
        yield _labelled(m.JOBS, jobs)
        if self.registry is not None:
            yield from self._streams()
        if self.census is not None:
            try:
                workers = self.census.workers_by_queue()
            except Exception as exc:  # noqa: BLE001
                log.warning("metrics: worker census failed: %s", type(exc).__name__)
                return
            yield _labelled(m.WORKERS_ALIVE, {queue: len(names) for queue, names in workers.items()})


    def _streams(self) -> Iterator[Metric]:
        redis, keys = self.store.redis, self.store.keys
        wanted = [spec.name for spec in self.registry.wanted()]
        pipe = redis.pipeline()
        for name in wanted:
            pipe.hget(keys.capture_status(name), "state")
            pipe.xlen(keys.frames(name))
        answers = pipe.execute()
        # Only "running": a capture still starting, reconnecting to a lost source, or failed (whose status and
        # error stay for a while) appends no frames.
        capturing = sum(1 for state in answers[0::2] if state == b"running")
        lags = {name: self.registry.lag(name) for name in wanted}
        yield _single(m.STREAMS_WANTED, len(wanted))
        yield _single(m.STREAMS_CAPTURING, capturing)
        yield _labelled(m.STREAM_LENGTH, dict(zip(wanted, answers[1::2])))
        yield _labelled(m.STREAM_LAG, {name: lag for name, lag in lags.items() if lag is not None})
        yield _single(m.STREAM_LAG_TOTAL, sum(lag for lag in lags.values() if lag is not None))


def _single(spec: m.MetricSpec, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(spec.name, spec.help, value=value)


def _labelled(spec: m.MetricSpec, values: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(spec.name, spec.help, labels=list(spec.labels))
    for label, value in sorted(values.items()):
        family.add_metric([label], value)
    return family


class CoordinatorMetrics:
    """The coordinator's registry: the fleet collector plus counters of what this process did."""

    def __init__(self, store: JobStore, census: WorkerCensus | None, streams: StreamRegistry | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(FleetCollector(store, census, streams))  # type: ignore[arg-type]
        self.jobs_submitted = create_metric(m.JOBS_SUBMITTED, self.registry)
        self.jobs_finished = create_metric(m.JOBS_FINISHED, self.registry)
        self.job_videos = create_metric(m.JOB_VIDEOS, self.registry)
        self.redis_data_loss = create_metric(m.REDIS_DATA_LOSS, self.registry)
        self.redis_persistent = create_metric(m.REDIS_PERSISTENT, self.registry)
        self.redis_persistent.set(-1)  # until read at start
        self.videos_given_back = create_metric(m.VIDEOS_GIVEN_BACK, self.registry)
        self.redis_reconnects = create_metric(m.REDIS_RECONNECTS, self.registry)
        # Every final state and outcome from the start: increase() misses a counter's first step from absent
        # to 1, and the job failure ratio alert reads these.
        for state in JobState:
            if state.finished:
                self.jobs_finished.labels(state=state.value)
        for outcome in VideoOutcome:
            self.job_videos.labels(outcome=outcome.value)

    def job_finished(self, result: JobResult) -> None:
        self.jobs_finished.labels(state=result.state).inc()
        for video in result.videos:
            self.job_videos.labels(outcome=video.outcome.value).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

