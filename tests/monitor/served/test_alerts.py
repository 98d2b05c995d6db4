"""Alert rules: validated YAML, evaluated on closed non-empty windows, recorded once per rule
and window, sent to a real webhook receiver on 127.0.0.1; the watcher resumes after a restart;
the server exposes the latest monitored values as gauges."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from forgeml.errors import InputError
from forgeml.monitor import check_rules, load_rules, served_report, watch
from forgeml.store import Workspace

from .conftest import DAY, MODEL, REF, T0


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict]]]:
    """A real HTTP server on 127.0.0.1 that keeps the JSON bodies POSTed to it."""
    received: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


def _rules(tmp_path: Path, webhook: str, **extra: object) -> Path:
    document = {
        "webhook": webhook,
        "rules": [
            {
                "name": "inputs drift",
                "model": REF,
                "metric": "input_drift.share_drifted",
                "op": ">",
                "threshold": 0.1,
                "windows": 2,
                "severity": "critical",
            },
            {"name": "errors", "model": REF, "metric": "error_rate", "op": ">=", "threshold": 0.5},
            {
                "name": "accuracy",
                "model": REF,
                "metric": "true.accuracy",
                "op": "<",
                "threshold": 0.99,
            },
        ],
        **extra,
    }
    path = tmp_path / "rules.yaml"
    import yaml

    path.write_text(yaml.safe_dump(document))
    return path


def test_rules_fire_once_on_consecutive_drifted_windows_and_never_on_an_empty_one(
    logged, receiver, tmp_path
):
    url, received = receiver
    rules = load_rules(_rules(tmp_path, url))
    now = T0 + 10 * DAY
    report = served_report(REF, window="1d", workspace=logged, now_ms=now, n_bootstrap=50)
    assert [w.rows for w in report.windows] == [400, 400, 400, 400, 0]
    assert report.windows[4].empty and report.windows[4].error_rate == 1.0
    assert report.windows[1].errors == 2
    drift = [w.values()["input_drift.share_drifted"] for w in report.windows[:4]]
    assert max(drift[:2]) < min(drift[2:])

    first = check_rules(rules, workspace=logged, window="1d", now_ms=now, n_bootstrap=50)
    assert first.errors == {}
    [alert] = first.alerts
    assert alert.rule == "inputs drift" and alert.severity == "critical"
    assert (alert.window_start_ms, alert.window_end_ms) == (T0 + 2 * DAY, T0 + 4 * DAY)
    assert alert.delivery == "sent"
    # the empty window (only failed requests, error rate 1) raises nothing, and says why
    assert any("empty" in n and "no rule is evaluated" in n for n in first.notes)
    assert any("true.accuracy not available" in n for n in first.notes)
    assert [body["alert"]["rule"] for body in received] == ["inputs drift"]
    assert received[0]["alert"]["model"] == MODEL
    stored = logged.monitor.alerts(model=MODEL)
    assert [(a.rule, a.delivery) for a in stored] == [("inputs drift", "sent")]

    # checking again records nothing and calls no webhook
    again = check_rules(rules, workspace=logged, window="1d", now_ms=now, n_bootstrap=50)
    assert again.alerts == () and len(received) == 1
    assert len(logged.monitor.alerts(model=MODEL)) == 1
    latest = {v.metric: v for v in logged.monitor.latest_values([MODEL])}
    assert latest["input_drift.share_drifted"].window_start_ms == T0 + 3 * DAY
    assert "estimated.accuracy" in latest


def test_a_failed_webhook_is_recorded_and_the_alert_kept(logged, tmp_path):
    rules = load_rules(_rules(tmp_path, "http://127.0.0.1:9/nothing-listens"))
    result = check_rules(rules, workspace=logged, window="1d", now_ms=T0 + 10 * DAY, n_bootstrap=0)
    [alert] = result.alerts
    assert alert.delivery.startswith("failed: ")
    assert logged.monitor.alerts()[0].delivery.startswith("failed: ")


def test_the_watcher_resumes_after_a_restart_without_repeating_alerts(
    logged, receiver, tmp_path, store_url
):
    url, received = receiver
    rules = load_rules(_rules(tmp_path, url))
    settings = logged.settings
    checks = []
    for _ in range(2):  # two watcher processes, one after the other
        with Workspace(settings) as ws:
            ran = watch(
                rules,
                workspace=ws,
                window="1d",
                interval_s=0.01,
                iterations=2,
                on_check=checks.append,
                now_ms=T0 + 10 * DAY,
                n_bootstrap=0,
            )
            assert ran == 2
    assert [len(c.alerts) for c in checks] == [1, 0, 0, 0]
    assert len(received) == 1
    state = logged.monitor.get_state(f"watch:{REF}:time:{DAY}")
    # a rule spans 2 windows: the next check starts at the newest closed window (day 4)
    assert state == {"since_ms": T0 + 4 * DAY}


def test_the_server_exposes_the_latest_monitored_values(logged, tmp_path, server_factory):
    rules = load_rules(_rules(tmp_path, "http://127.0.0.1:9/x"))
    check_rules(rules, workspace=logged, window="1d", now_ms=T0 + 10 * DAY, n_bootstrap=0)
    server = server_factory(logged, models=(REF,))
    text = httpx.get(f"{server.url}/metrics", headers=server.headers, timeout=30).text
    share = logged.monitor.latest_values([MODEL])
    expected = {v.metric: v.value for v in share}["input_drift.share_drifted"]
    wanted = "forgeml_monitor_input_drift_share{"
    line = next(row for row in text.splitlines() if row.startswith(wanted))
    assert f'model="{MODEL}"' in line
    assert float(line.rsplit(" ", 1)[1]) == pytest.approx(expected)
    assert 'forgeml_monitor_performance{kind="estimated",metric="accuracy",model="adult"}' in text
    assert 'forgeml_monitor_drift_effect_size{column="age",model="adult"}' in text


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            {
                "rules": [
                    {"name": "x", "model": REF, "metric": "error_rate", "op": "!", "threshold": 1}
                ]
            },
            "rules[0].op",
        ),
        (
            {"rules": [{"name": "x", "model": REF, "metric": "speed", "op": ">", "threshold": 1}]},
            "rules[0].metric: unknown metric 'speed'",
        ),
        (
            {"rules": [{"name": "x", "model": REF, "metric": "error_rate", "op": ">"}]},
            "rules[0].threshold: Field required",
        ),
        (
            {
                "rules": [
                    {
                        "name": "x",
                        "model": REF,
                        "metric": "error_rate",
                        "op": ">",
                        "threshold": 1,
                        "windows": 0,
                    }
                ]
            },
            "rules[0].windows",
        ),
        (
            {
                "rules": [
                    {
                        "name": "x",
                        "model": "adult",
                        "metric": "error_rate",
                        "op": ">",
                        "threshold": 1,
                    }
                ]
            },
            "rules[0].model",
        ),
        (
            {
                "rules": [
                    {
                        "name": "x",
                        "model": REF,
                        "metric": "error_rate",
                        "op": ">",
                        "threshold": 1,
                        "severity": "loud",
                    }
                ]
            },
            "rules[0].severity",
        ),
        (
            {
                "webhook": "ftp://x",
                "rules": [
                    {"name": "x", "model": REF, "metric": "error_rate", "op": ">", "threshold": 1}
                ],
            },
            "webhook: expected an http",
        ),
        ({"rules": []}, "rules: "),
        (
            {
                "rules": [
                    {"name": "x", "model": REF, "metric": "error_rate", "op": ">", "threshold": 1},
                    {"name": "x", "model": REF, "metric": "rows", "op": ">", "threshold": 1},
                ]
            },
            "repeated: x",
        ),
    ],
)
def test_bad_rules_are_refused_naming_the_field(tmp_path, document, expected):
    import yaml

    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(InputError) as caught:
        load_rules(path)
    assert expected in str(caught.value)
    assert str(path) in str(caught.value)


def test_unreadable_rules_files_are_refused(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_rules(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [unclosed")
    with pytest.raises(InputError, match="not valid YAML"):
        load_rules(bad)
    bad.write_text("- a list")
    with pytest.raises(InputError, match="expected a mapping"):
        load_rules(bad)


def test_the_html_report_is_offline_with_drift_performance_and_alerts(logged, tmp_path):
    from forgeml.monitor import write_served_html

    rules = load_rules(_rules(tmp_path, "http://127.0.0.1:9/x"))
    check_rules(rules, workspace=logged, window="1d", now_ms=T0 + 10 * DAY, n_bootstrap=0)
    report = served_report(REF, window="1d", workspace=logged, now_ms=T0 + 10 * DAY)
    path = write_served_html(report, tmp_path / "out" / "report.html", logged.monitor.alerts())
    page = path.read_text()
    assert page.count("data:image/png;base64,") >= 4 + len(report.latest_drift.columns) - 1
    for title in ("Drift over windows", "Performance over time: accuracy", "Latency and errors"):
        assert title in page
    assert "inputs drift" in page and "empty window: not compared" in page
    assert "<script" not in page and 'src="http' not in page and 'href="http' not in page


def test_the_watcher_goes_on_when_a_model_cannot_be_checked(sqlite_workspace):
    """A model that cannot be checked (not registered) is reported by every check, and the
    loop keeps checking."""
    rules = load_rules(
        {"rules": [{"name": "x", "model": REF, "metric": "error_rate", "op": ">", "threshold": 0}]}
    )
    checks = []
    ran = watch(
        rules,
        workspace=sqlite_workspace,
        window="1h",
        interval_s=0.01,
        iterations=3,
        on_check=checks.append,
    )
    assert ran == 3 and len(checks) == 3
    assert all(REF in c.errors and c.alerts == () for c in checks)
    assert "adult" in checks[0].errors[REF]


def test_windows_around_a_day_without_requests_are_not_consecutive(sqlite_workspace, adult):
    from .conftest import log_day, register_adult, shifted

    ws = sqlite_workspace
    register_adult(ws, adult)
    log_day(ws, adult.iloc[3000:3400], 0)
    log_day(ws, shifted(adult.iloc[3400:3800]), 1)
    log_day(ws, shifted(adult.iloc[3800:4200]), 3)  # nothing on day 2
    rules = load_rules(
        {
            "rules": [
                {
                    "name": "drift",
                    "model": REF,
                    "metric": "input_drift.share_drifted",
                    "op": ">",
                    "threshold": 0.1,
                    "windows": 2,
                },
            ]
        }
    )
    now = T0 + 10 * DAY
    report = served_report(REF, window="1d", workspace=ws, now_ms=now, n_bootstrap=0)
    assert [w.start_ms for w in report.windows] == [T0, T0 + DAY, T0 + 3 * DAY]
    assert any(
        "1 window(s) between the first and the last had no request" in n for n in report.notes
    )
    result = check_rules(rules, workspace=ws, window="1d", now_ms=now, n_bootstrap=0)
    assert result.alerts == ()
    log_day(ws, shifted(adult.iloc[4200:4600]), 2)  # late records fill the gap
    again = check_rules(rules, workspace=ws, window="1d", now_ms=now, n_bootstrap=0, resume=False)
    assert [(a.window_start_ms, a.window_end_ms) for a in again.alerts] == [
        (T0 + DAY, T0 + 3 * DAY),
        (T0 + 2 * DAY, T0 + 4 * DAY),
    ]
