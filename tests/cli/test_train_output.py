"""The line `forgeml train` prints about the returned model's prediction times says what was
measured, and only that: a part the deadline left unmeasured is absent from
``TrainResult.latency``, and an estimate is printed as one."""

from __future__ import annotations

from types import SimpleNamespace

from forgeml.cli._train import _latency_line


def _result(latency: dict[str, float], bound: float | None = 10.0) -> SimpleNamespace:
    return SimpleNamespace(
        latency=latency, task="binary", config=SimpleNamespace(max_latency_ms=bound)
    )


def test_every_part_measured_is_printed() -> None:
    line = _latency_line(_result({"one_row_ms": 0.42, "rows_1000_ms": 12.3, "first_call_ms": 80.0}))
    assert "one row 0.42 ms (predict_proba" in line
    assert "1,000 held-out rows 12.3 ms" in line
    assert "(bound: 10 ms for one row)" in line


def test_a_part_the_deadline_left_out_is_not_printed_as_measured() -> None:
    line = _latency_line(_result({"one_row_ms": 0.42, "first_call_ms": 80.0}, bound=None))
    assert "one row 0.42 ms" in line
    assert "1,000" not in line
    assert "bound" not in line


def test_an_estimated_one_row_time_is_said_to_be_an_estimate() -> None:
    line = _latency_line(_result({"one_row_ms_estimated": 1.5}))
    assert "one row ~1.50 ms (not measured" in line


def test_nothing_measured_says_so() -> None:
    assert "not measured" in _latency_line(_result({"first_call_ms": 3000.0}))
