"""scripts/validate_monitoring.py, the ``make lint`` check of the alerts, the PodMonitors and
the Grafana dashboard: the committed files pass it, and each kind of mistake it exists for
(an unknown metric or label, PromQL that does not parse, a field the CRD does not have, an
alert without severity, runbook or a real ``for:``) is refused, so a green lint means
something."""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPONENT = ROOT / "deploy" / "k8s" / "components" / "prometheus-operator"


@pytest.fixture(scope="module")
def vm() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "validate_monitoring", ROOT / "scripts" / "validate_monitoring.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _doc(name: str, kind: str) -> dict[str, Any]:
    docs = yaml.safe_load_all((COMPONENT / name).read_text())
    return copy.deepcopy(next(d for d in docs if d["kind"] == kind))


def _collect(vm: ModuleType, check: str) -> list[str]:
    problems: list[str] = []
    getattr(vm, check)(lambda _check, _path, found, _detail: problems.extend(found))
    return problems


def test_the_committed_files_pass(vm: ModuleType) -> None:
    for name in ("podmonitors.yaml", "alerts.yaml"):
        for doc in yaml.safe_load_all((COMPONENT / name).read_text()):
            assert vm.validate_crd(doc, is_patch=False) == []
    assert _collect(vm, "check_dashboard") == []
    assert _collect(vm, "check_scaling") == []


@pytest.mark.parametrize(
    ("expr", "complaint"),
    [
        ("sum(rate(visiona_jobz_total[5m]))", "not in the catalogue"),
        ('rate(http_server_requests_total{status="500"}[5m])', "no label 'status'"),
        ("histogram_quantile(0.9, rate(visiona_jobs_bucket[5m]))", "not in the catalogue"),
        ("sum(rate(visiona_relay_published_total[5m])", "does not parse"),
        ('{__name__="up"}', "without a metric name"),
    ],
)
def test_promql_mistakes_are_refused(vm: ModuleType, expr: str, complaint: str) -> None:
    problems = vm.check_promql(expr)
    assert problems and complaint in problems[0]


def test_promql_of_histograms_and_grafana_intervals_is_accepted(vm: ModuleType) -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, route) "
        '(rate(http_server_request_duration_seconds_bucket{service=~"$service"}[$__rate_interval])))'
    )
    assert vm.check_promql(expr) == []


def test_a_field_the_crd_does_not_have_is_refused(vm: ModuleType) -> None:
    monitor = _doc("podmonitors.yaml", "PodMonitor")
    monitor["spec"]["podMetricsEndpoints"][0]["intervall"] = "30s"
    monitor["spec"]["podMetricsEndpoints"][0]["scrapeTimeout"] = "10 seconds"
    problems = " ".join(vm.validate_crd(monitor, is_patch=False))
    assert "'intervall' was unexpected" in problems
    assert "'10 seconds' does not match" in problems


def test_an_alert_without_severity_runbook_or_for_is_refused(vm: ModuleType) -> None:
    rule = _doc("alerts.yaml", "PrometheusRule")
    alert = rule["spec"]["groups"][0]["rules"][0]
    alert["for"] = "1m"
    alert["labels"] = {}
    alert["annotations"]["runbook_url"] = "deploy/k8s/README.md#no-such-section"
    problems = " ".join(vm.validate_crd(rule, is_patch=False))
    assert "severity None" in problems
    assert "#no-such-section is no heading" in problems
    assert "a blip would fire it" in problems
