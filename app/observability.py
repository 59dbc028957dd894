"""Prometheus metrics, kept in a registry per app so that several apps in one process never share counters."""

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
# The method is whatever the client sends: anything else shares one label, so it cannot add series.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"})


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "s2c_http_requests_total",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "s2c_http_request_duration_seconds",
            "HTTP request latency by method, route template and status code.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "s2c_inference_batch_size",
            "Images per generator call (micro-batch size).",
            buckets=BATCH_SIZE_BUCKETS,
            registry=self.registry,
        )
        self.inference_seconds = Histogram(
            "s2c_inference_seconds",
            "Seconds per generator call.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.model_version = Gauge(
            "s2c_model_version",
            "The active generator version (0 while none is loaded).",
            registry=self.registry,
        )
        self.model_loads = Counter(
            "s2c_model_loads_total",
            "Generator versions swapped in by the model store.",
            registry=self.registry,
        )

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.inference_seconds.observe(seconds)


class MetricsMiddleware:
    """Counts and times every HTTP request, labelled by route template (not the raw path) and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            # Unmatched paths share one label, so scanners cannot blow up the number of series.
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
            labels = (method, template, str(status))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.request_seconds.labels(*labels).observe(time.perf_counter() - started)
