"""Prometheus metrics of one app instance (its own registry, so several apps can live in one process).

Counters and histograms are updated where things happen; gauges that describe state (jobs by status,
queue depth, device memory) are read from their source at scrape time by :class:`_StateCollector`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import psutil
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    """All onepass metrics; ``state`` returns (jobs by status, queue depth, device memory) at scrape time."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.request_seconds = Histogram(
            "onepass_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "onepass_batch_size",
            "scenes per forward pass",
            buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32),
            registry=r,
        )
        self.forward_seconds = Histogram(
            "onepass_forward_seconds", "seconds per batched forward pass", buckets=LATENCY_BUCKETS, registry=r
        )
        self.job_seconds = Histogram(
            "onepass_job_seconds", "seconds from claim to success", buckets=LATENCY_BUCKETS, registry=r
        )
        self.jobs_finished = Counter(
            "onepass_jobs_finished", "jobs that ended, by status", ["status"], registry=r
        )
        self.oom = Counter("onepass_out_of_memory", "out-of-memory errors caught (batches split)", registry=r)
        self.idle_trims = Counter(
            "onepass_idle_memory_trims", "free memory handed back to the OS after idle spells", registry=r
        )
        self.idle_trim_released = Counter(
            "onepass_idle_memory_released_bytes", "resident memory released by those trims", registry=r
        )
        self._collector: _StateCollector | None = None

    def watch_state(
        self,
        job_counts: Callable[[], dict[str, int]],
        queue_depth: Callable[[], int],
        devices: Callable[[], list[str]],
    ) -> None:
        self._collector = _StateCollector(job_counts, queue_depth, devices)
        self.registry.register(self._collector)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector(Collector):
    def __init__(
        self,
        job_counts: Callable[[], dict[str, int]],
        queue_depth: Callable[[], int],
        devices: Callable[[], list[str]],
    ) -> None:
        self._job_counts, self._queue_depth, self._devices = job_counts, queue_depth, devices

    def collect(self) -> Iterable[GaugeMetricFamily]:
        jobs = GaugeMetricFamily("onepass_jobs", "jobs in the store by status", labels=["status"])
        for status, n in self._job_counts().items():
            jobs.add_metric([status], n)
        yield jobs
        yield GaugeMetricFamily(
            "onepass_queue_depth", "jobs waiting (queued + waiting for a batch)", value=self._queue_depth()
        )
        mem = GaugeMetricFamily(
            "onepass_device_memory_bytes", "memory in use per device", labels=["device", "kind"]
        )
        for dev in self._devices():
            for kind, value in device_memory(dev).items():
                mem.add_metric([dev, kind], value)
        yield mem


def device_memory(device: str) -> dict[str, float]:
    """CUDA: allocated and peak bytes from the caching allocator; CPU: this process's resident set."""
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            return {
                "allocated": torch.cuda.memory_allocated(device),
                "peak": torch.cuda.max_memory_allocated(device),
            }
        return {}
    return {"rss": float(psutil.Process().memory_info().rss)}


class RequestMetricsMiddleware:
    """Pure ASGI middleware (no body buffering, so streams and uploads pass through untouched)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = {"code": 500}
        t0 = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.request_seconds.labels(scope["method"], template, str(status["code"])).observe(
                time.perf_counter() - t0
            )
