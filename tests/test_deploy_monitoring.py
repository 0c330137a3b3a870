"""scripts/validate_monitoring.py, the ``make lint`` check of the alerts, the PodMonitors and
the Grafana dashboard: the committed files pass it, and each kind of mistake it exists for
(an unknown metric or label, PromQL that does not parse, a field the CRD does not have, an
alert without severity, runbook or a real ``for:``, a process not scraped or that Prometheus
cannot reach) is refused, so a green lint means something."""

from __future__ import annotations

import copy
import importlib.util
import shutil
import sys
from collections.abc import Callable
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


def _k8s_copy(vm: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """deploy/k8s copied to ``tmp_path``, and the validator reading the copy."""
    k8s = tmp_path / "k8s"
    shutil.copytree(ROOT / "deploy" / "k8s", k8s)
    monkeypatch.setattr(vm, "K8S_DIR", k8s)
    monkeypatch.setattr(vm, "BASE_DIR", k8s / "base")
    monkeypatch.setattr(vm, "PROD_DIR", k8s / "overlays" / "prod")
    return k8s


def _rewrite(path: Path, kind: str, name: str, change: Callable[[dict[str, Any]], None]) -> None:
    docs = list(yaml.safe_load_all(path.read_text()))
    change(next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name))
    path.write_text(yaml.safe_dump_all(docs))


def _unannotated(deployment: dict[str, Any]) -> None:
    del deployment["spec"]["template"]["metadata"]["annotations"]


def _web_unlisted(policy: dict[str, Any]) -> None:
    expression = policy["spec"]["podSelector"]["matchExpressions"][0]
    expression["values"].remove("web")


def _http_port_dropped(policy: dict[str, Any]) -> None:
    policy["spec"]["ingress"][0]["ports"] = [{"protocol": "TCP", "port": "metrics"}]


@pytest.mark.parametrize(
    ("path", "kind", "name", "change", "complaint"),
    [
        ("base/web.yaml", "Deployment", "web", _unannotated, "web: not scraped"),
        (
            "base/network-policies.yaml",
            "NetworkPolicy",
            "metrics-scrape",
            _web_unlisted,
            "web: no NetworkPolicy lets the monitoring namespace reach 3000",
        ),
        (
            "base/network-policies.yaml",
            "NetworkPolicy",
            "metrics-scrape",
            _http_port_dropped,
            "web: no NetworkPolicy lets the monitoring namespace reach 3000",
        ),
    ],
)
def test_a_process_that_prometheus_does_not_scrape_or_cannot_reach_is_refused(
    vm: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    kind: str,
    name: str,
    change: Callable[[dict[str, Any]], None],
    complaint: str,
) -> None:
    k8s = _k8s_copy(vm, tmp_path, monkeypatch)
    assert _collect(vm, "check_scaling") == []
    _rewrite(k8s / path, kind, name, change)
    assert [p for p in _collect(vm, "check_scaling") if complaint in p], complaint


def test_the_gateways_port_open_to_all_counts_as_open_to_prometheus(vm: ModuleType) -> None:
    policies = [
        {
            "spec": {
                "podSelector": {"matchLabels": {"app": "gateway"}},
                "ingress": [{"ports": [{"protocol": "TCP", "port": 8000}]}],
            }
        }
    ]
    gateway = {"app": "gateway"}
    assert vm._open_to_prometheus(policies, gateway, {"http": 8000}, 8000)
    assert not vm._open_to_prometheus(policies, gateway, {"http": 8000, "admin": 9000}, 9000)
    assert vm._open_to_prometheus(policies, {"app": "unisolated"}, {}, 9000)
