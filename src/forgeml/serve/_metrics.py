"""The server's Prometheus metrics, in a registry of its own (one per app)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["ServerMetrics"]

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1.0,
    2.0,
    5.0,
)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)


class _Live(Collector):
    """Gauges read when scraped (queue depths, cache sizes, log counters)."""

    def __init__(self, read: Callable[[], dict[str, list[tuple[dict[str, str], float]]]]) -> None:
        self._read = read

    def describe(self) -> Any:
        return []  # names vary with the served models: nothing to check at registration

    def collect(self) -> Any:
        for name, samples in self._read().items():
            labels = sorted(samples[0][0]) if samples else []
            family = GaugeMetricFamily(name, _HELP.get(name, name), labels=labels)
            for label_values, value in samples:
                family.add_metric([label_values[k] for k in labels], value)
            yield family


_HELP = {
    "forgeml_batch_queue_depth": "Requests waiting for a batch, per model version.",
    "forgeml_cache_entries": "Rows held in the prediction cache, per model version.",
    "forgeml_prediction_log_depth": "Prediction records waiting to be written.",
    "forgeml_prediction_log_written": "Prediction records written to the store.",
    "forgeml_prediction_log_dropped": "Prediction records dropped because the log was full.",
    "forgeml_prediction_log_submitted": "Prediction records submitted to the log.",
    "forgeml_prediction_log_rejected": "Prediction records refused as invalid by the store.",
    "forgeml_prediction_log_write_errors": "Failed writes of the prediction log (retried).",
    "forgeml_model_ready": "1 when the model is loaded and served.",
    "forgeml_route_weight": "Configured share of traffic per model version.",
    "forgeml_monitor_input_drift_share": "Share of input columns drifted in the latest window.",
    "forgeml_monitor_input_drifted": "1 when the latest window's inputs drifted (table rule).",
    "forgeml_monitor_drift_effect_size": "Drift effect size per input column, latest window.",
    "forgeml_monitor_prediction_drift": "Drift effect size of the model's score, latest window.",
    "forgeml_monitor_performance": "Latest true (labelled) or estimated model performance.",
    "forgeml_monitor_window_end_seconds": "End of the window the monitored values describe.",
}


class ServerMetrics:
    """Counters and histograms the request path updates, plus gauges read at scrape time."""

    def __init__(self, live: Callable[[], dict[str, list[tuple[dict[str, str], float]]]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "forgeml_requests",
            "Prediction requests answered, by model, version, protocol and status.",
            ["model", "version", "protocol", "status"],
            registry=r,
        )
        self.rows = Counter(
            "forgeml_predicted_rows",
            "Rows predicted, by model and version.",
            ["model", "version"],
            registry=r,
        )
        self.latency = Histogram(
            "forgeml_request_latency_seconds",
            "Time from a request's arrival to its answer, by model and version.",
            ["model", "version"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_rows = Histogram(
            "forgeml_batch_rows",
            "Rows per predicted batch, by model and version.",
            ["model", "version"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.batch_seconds = Histogram(
            "forgeml_batch_seconds",
            "Time to predict one batch, by model and version.",
            ["model", "version"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.cache = Counter(
            "forgeml_cache_lookups",
            "Prediction cache lookups, by model, version and result (hit or miss).",
            ["model", "version", "result"],
            registry=r,
        )
        self.errors = Counter(
            "forgeml_errors",
            "Requests refused or failed, by model, HTTP status and error code.",
            ["model", "status", "code"],
            registry=r,
        )
        self.shadow = Counter(
            "forgeml_shadow_requests",
            "Requests copied to a shadow version, by model, version and outcome.",
            ["model", "version", "outcome"],
            registry=r,
        )
        self.unseen = Counter(
            "forgeml_unseen_categories",
            "Input values in a category never seen in training, by model, version and column.",
            ["model", "version", "column"],
            registry=r,
        )
        self.quality = Counter(
            "forgeml_input_quality_issues",
            "Input values with a data-quality issue at serving time, by model, version, column "
            "and issue: out_of_range (outside the training data's range), unseen_category, "
            "unexpected_missing (missing where the training data had none).",
            ["model", "version", "column", "issue"],
            registry=r,
        )
        self.switches = Counter(
            "forgeml_route_changes",
            "Routing table changes applied (alias moves, route updates), by model.",
            ["model"],
            registry=r,
        )
        r.register(_Live(live))

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
