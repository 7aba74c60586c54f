"""Prometheus metrics and the request observer (metrics + audit for every request, in one pass).

The observer is a plain ASGI middleware (no per-request task or body buffering): it notes the
response status, then records the request's count and latency by route template, and for every
``/v1`` request and page view under ``/ui`` (not its static files) an audit entry — who (the key
that authenticated, or the key id a refused request claimed), what (the route's action and the
path), when, and the status, refused requests included.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from riskengine.core.audit import make_entry
from riskengine.workflows.monitor import metric_values

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The service's metrics, in their own registry (several apps may live in one test process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("riskengine_http_requests", "HTTP requests by route and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("riskengine_http_request_duration_seconds", "HTTP request latency",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.grades_served = Counter("riskengine_grades_served", "enterprise grades returned to clients",
                                     ["endpoint"], registry=self.registry)
        self.model_info = Gauge("riskengine_model_info", "the model version behind the served grades",
                                ["version"], registry=self.registry)
        self.grades_loaded = Gauge("riskengine_grades_loaded", "enterprises in the served grades",
                                   registry=self.registry)
        self.audit_pending = Gauge("riskengine_audit_pending", "audit entries waiting to be written",
                                   registry=self.registry)
        self.cases_open = Gauge("riskengine_cases_open", "open cases by kind and current step",
                                ["kind", "status"], registry=self.registry)
        self.cases_overdue = Gauge("riskengine_cases_overdue", "open cases past the due day of their step",
                                   ["kind"], registry=self.registry)
        self.cases_median_days = Gauge("riskengine_cases_median_days_to_decision",
                                       "median calendar days from receipt to decision (NaN: none decided)",
                                       registry=self.registry)

    def set_cases(self, overview: dict[str, Any]) -> None:
        """The credit office's case overview (``riskengine.workflows.cases.overview``) as gauges."""
        for kind, steps in overview["open"].items():
            for status, n in steps.items():
                self.cases_open.labels(kind, status).set(n)
        for kind, n in overview["overdue_by_kind"].items():
            self.cases_overdue.labels(kind).set(n)
        median = overview["median_days_to_decision"]
        self.cases_median_days.set(float("nan") if median is None else float(median))

    def set_snapshot(self, model_version: str | None, n_grades: int) -> None:
        self.model_info.clear()
        self.model_info.labels(version=model_version or "none").set(1)
        self.grades_loaded.set(n_grades)

    def watch_audit(self, pending: Callable[[], int]) -> None:
        self.audit_pending.set_function(pending)

    def watch_monitor(self, report_file: Path) -> None:
        """Expose the latest ``riskengine monitor`` report's figures (read at each scrape)."""
        self.registry.register(MonitorCollector(report_file))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MonitorCollector:
    """Gauges from the latest monitoring report: adverse per 100 random inspections by grade, PSI of
    the score, monotonicity and the number of alerts (nothing until a report exists)."""

    def __init__(self, report_file: Path) -> None:
        self.report_file = Path(report_file)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            report = json.loads(self.report_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        values = metric_values(report)
        rates = GaugeMetricFamily("riskengine_monitor_adverse_per_100",
                                  "adverse outcomes per 100 random inspections over the monitored window",
                                  labels=["grade"])
        counts = GaugeMetricFamily("riskengine_monitor_random_inspections",
                                   "random inspections over the monitored window", labels=["grade"])
        for name, value in values.items():
            if name.startswith("monitor_adverse_per_100_"):
                rates.add_metric([name.rsplit("_", 1)[1]], value)
            elif name.startswith("monitor_random_inspections_"):
                counts.add_metric([name.rsplit("_", 1)[1]], value)
        yield rates
        yield counts
        for name, help_text in (("monitor_psi_score", "PSI of the score against the training population"),
                                ("monitor_psi_features_max", "largest PSI of a model feature"),
                                ("monitor_monotone", "1 when the pooled rates rise A < B < C < D"),
                                ("monitor_alerts", "alerts raised by the latest monitoring report")):
            if name in values:
                yield GaugeMetricFamily(f"riskengine_{name}", help_text, value=values[name])


class ObserveMiddleware:
    """Records metrics for every HTTP request and an audit entry for every ``/v1`` request and page
    view under ``/ui`` (not its static files).

    The audit entry is journalled and synced to disk *before* the response starts (see
    ``riskengine.core.audit``): no request is answered without a durable audit row.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        audited = False

        replaced = False

        async def send_status(message: Message) -> None:
            nonlocal status, audited, replaced
            if replaced:
                return  # the app's answer was replaced by the 503 below
            if message["type"] == "http.response.start":
                status = int(message["status"])
                audited = True
                if not await self._audit(scope, status):
                    replaced, status = True, 503
                    await self._unavailable(scope, send)
                    return
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            if not audited:  # the app raised: the 500 that follows is audited first too
                await self._audit(scope, status)
            self._observe(scope, status, time.perf_counter() - started)

    @staticmethod
    def _observe(scope: Scope, status: int, seconds: float) -> None:
        service = getattr(scope["app"].state, "service", None)
        if service is None:
            return
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        service.metrics.observe(scope["method"], template, status, seconds)

    @staticmethod
    async def _unavailable(scope: Scope, send: Send) -> None:
        body = json.dumps({"type": "https://riskengine.example/problems/unavailable",
                           "title": "Service unavailable", "status": 503,
                           "detail": "the request could not be audited, so it is not answered; try again",
                           "instance": scope["path"]}).encode()
        await send({"type": "http.response.start", "status": 503,
                    "headers": [(b"content-type", b"application/problem+json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    async def _audit(scope: Scope, status: int) -> bool:
        """Journal the request's audit entry and wait until it is on disk (False if it cannot be)."""
        service = getattr(scope["app"].state, "service", None)
        path: str = scope["path"]
        if service is None or not path.startswith(("/v1/", "/ui/")) or path.startswith("/ui/static/"):
            return True
        route = scope.get("route")
        state: dict[str, Any] = scope.get("state") or {}
        principal = state.get("principal")
        query = scope.get("query_string", b"").decode("latin-1")
        entry = make_entry(
            getattr(route, "name", None) or "unmatched",
            resource=path + (f"?{query}" if query else ""),
            status=status,
            key_id=principal.key_id if principal else state.get("claimed_key_id"),
            key_name=principal.name if principal else None,
            role=principal.role if principal else None,
            detail=state.get("audit_detail"),
        )
        loop = asyncio.get_running_loop()
        durable = loop.create_future()

        def resolve(error: OSError | None) -> None:
            if not durable.done():
                durable.set_result(error is None)

        def done(error: OSError | None) -> None:  # from the journal's thread
            loop.call_soon_threadsafe(resolve, error)

        try:
            service.audit.record(entry, on_durable=done)
        except RuntimeError:  # the journal is closed (shutting down)
            return False
        return bool(await durable)
