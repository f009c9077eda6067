"""Prometheus metrics of counting, with bounded labels (docs/counting.md, "Cardinality").

Live: per stream, the lines and zones of its config (at most MAX_LINES + MAX_ZONES), their directions,
and at most MAX_CLASS_LABELS class names per line or zone: the ones it is limited to, else the model's
first classes by id; any other class is counted as "other". Every series of a stream exists from the
moment its counter starts (at 0, so rate() sees the first event) and is removed when the stream leaves
this detector. Batch: totals over the videos a worker finished, with no video or job label.
"""

from __future__ import annotations

from typing import Any

from vidfleet_common import metric_names as m
from vidfleet_common.counting import MAX_BATCH_NAMES, MAX_CLASS_LABELS, OTHER
from vidfleet_common.counts import Counts
from vidfleet_common.job_config import JobConfig
from vidfleet_common.worker_metrics import create_metric
from vidfleet_detector.analytics.geometry import ResolvedGeometry

DWELL_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


def label_classes(classes: list[str] | None, names: dict[int, str]) -> list[str]:
    """The class_name values a line or zone gets its own series for."""
    chosen = classes if classes else [names[k] for k in sorted(names)]
    return list(chosen[:MAX_CLASS_LABELS])


class _StreamLabels:
    """One stream's label values: which classes each definition labels, and the series it created."""

    def __init__(self, geometry: ResolvedGeometry, names: dict[int, str]) -> None:
        self.geometry = geometry
        self.classes = {
            d.name: [*label_classes(d.spec.classes, names), OTHER] for d in (*geometry.lines, *geometry.zones)
        }
        self.inside: dict[tuple[str, str], int] = {}

    def label(self, name: str, cls: str) -> str:
        return cls if cls in self.classes[name] else OTHER


class CountingMetrics:
    """The live detector's counting metrics (on its registry)."""

    def __init__(self, registry: Any) -> None:
        self.crossings = create_metric(m.LINE_CROSSINGS, registry)
        self.entries = create_metric(m.ZONE_ENTRIES, registry)
        self.objects = create_metric(m.ZONE_OBJECTS, registry)
        self.capacity = create_metric(m.ZONE_CAPACITY, registry)
        self.dwell = create_metric(m.ZONE_DWELL, registry, buckets=DWELL_BUCKETS)
        self._streams: dict[str, _StreamLabels] = {}

    def stream_started(self, stream: str, geometry: ResolvedGeometry, names: dict[int, str], inside: dict[str, dict[str, int]]) -> None:
        self.stream_stopped(stream)
        labels = self._streams[stream] = _StreamLabels(geometry, names)
        for line in geometry.lines:
            for direction in line.spec.directions:
                for cls in labels.classes[line.name]:
                    self.crossings.labels(stream=stream, line=line.name, direction=direction, class_name=cls)
        for zone in geometry.zones:
            for cls in labels.classes[zone.name]:
                self.entries.labels(stream=stream, zone=zone.name, class_name=cls)
            self.dwell.labels(stream=stream, zone=zone.name)
            if zone.spec.capacity is not None:
                self.capacity.labels(stream=stream, zone=zone.name).set(zone.spec.capacity)
        self.set_inside(stream, inside)

    def observe(self, stream: str, events: list[dict[str, Any]], inside: dict[str, dict[str, int]]) -> None:
        """Committed events of `stream`, and who is inside its zones now."""
        labels = self._streams.get(stream)
        if labels is None:
            return
        for event in events:
            if event["kind"] == "cross":
                cls = labels.label(event["line"], event["class_name"])
                self.crossings.labels(stream=stream, line=event["line"], direction=event["direction"], class_name=cls).inc()
            elif event["kind"] == "enter":
                self.entries.labels(stream=stream, zone=event["zone"], class_name=labels.label(event["zone"], event["class_name"])).inc()
            else:
                self.dwell.labels(stream=stream, zone=event["zone"]).observe(event["dwell"])
        self.set_inside(stream, inside)

    def set_inside(self, stream: str, inside: dict[str, dict[str, int]]) -> None:
        labels = self._streams.get(stream)
        if labels is None:
            return
        for zone in labels.geometry.zones:
            totals = dict.fromkeys(labels.classes[zone.name], 0)
            for cls, count in inside.get(zone.name, {}).items():
                totals[labels.label(zone.name, cls)] += count
            for cls, count in totals.items():
                if labels.inside.get((zone.name, cls)) != count:
                    self.objects.labels(stream=stream, zone=zone.name, class_name=cls).set(count)
                    labels.inside[(zone.name, cls)] = count

    def stream_stopped(self, stream: str) -> None:
        """The stream left this detector: its series go (its new holder exports them)."""
        labels = self._streams.pop(stream, None)
        if labels is None:
            return
        for line in labels.geometry.lines:
            for direction in line.spec.directions:
                for cls in labels.classes[line.name]:
                    _remove(self.crossings, stream, line.name, direction, cls)
        for zone in labels.geometry.zones:
            for cls in labels.classes[zone.name]:
                _remove(self.entries, stream, zone.name, cls)
                _remove(self.objects, stream, zone.name, cls)
            _remove(self.dwell, stream, zone.name)
            _remove(self.capacity, stream, zone.name)


def _remove(metric: Any, *labels: str) -> None:
    try:
        metric.remove(*labels)
    except KeyError:
        pass


class BatchCountingMetrics:
    """A batch worker's totals: crossings and entries of the videos it finished (no per-video labels).

    Series are created at 0 when a video starts, so that the increase of its counts, added when it ends,
    is seen; line and zone names beyond MAX_BATCH_NAMES per worker process are counted as "other"."""

    def __init__(self, registry: Any) -> None:
        self.crossings = create_metric(m.BATCH_LINE_CROSSINGS, registry)
        self.entries = create_metric(m.BATCH_ZONE_ENTRIES, registry)
        self._names: set[str] = set()

    def video_started(self, config: JobConfig, names: dict[int, str]) -> None:
        for line in config.lines:
            for direction in line.directions:
                for cls in [*label_classes(line.classes, names), OTHER]:
                    self.crossings.labels(line=self._name(line.name), direction=direction, class_name=cls)
        for zone in config.zones:
            for cls in [*label_classes(zone.classes, names), OTHER]:
                self.entries.labels(zone=self._name(zone.name), class_name=cls)

    def video_counted(self, config: JobConfig, names: dict[int, str], counts: Counts) -> None:
        for line in config.lines:
            classes = label_classes(line.classes, names)
            for cls, by_direction in counts.lines[line.name].by_class.items() if line.name in counts.lines else ():
                for direction, count in by_direction.items():
                    if count:
                        label = cls if cls in classes else OTHER
                        self.crossings.labels(line=self._name(line.name), direction=direction, class_name=label).inc(count)
        for zone in config.zones:
            classes = label_classes(zone.classes, names)
            for cls, by_class in counts.zones[zone.name].by_class.items() if zone.name in counts.zones else ():
                if by_class.entries:
                    self.entries.labels(zone=self._name(zone.name), class_name=cls if cls in classes else OTHER).inc(by_class.entries)

    def _name(self, name: str) -> str:
        if name in self._names:
            return name
        if len(self._names) < MAX_BATCH_NAMES:
            self._names.add(name)
            return name
        return OTHER
