"""The monitoring half of ``scripts/validate_manifests.py`` (``make lint``): Prometheus Operator
objects, PromQL, the Grafana dashboard, and the autoscaling rules the manifests must keep.

- crd:        PodMonitor, ServiceMonitor and PrometheusRule against the vendored strict schemas
              (deploy/schemas/prometheus-operator.json; see deploy/schemas/README.md).
- promql:     every alert expression and dashboard query parses (promql-parser, the Rust
              parser of GreptimeDB) and names only metrics of METRICS, with their labels.
- alerts:     every alert has a severity, a summary, a description, a runbook section in
              deploy/k8s/README.md, and a `for:` of at least MIN_FOR.
- dashboard:  deploy/grafana/visiona.json: schemaVersion, the datasource and service
              variables, every panel on ``${datasource}``, unique panel ids.
- scaling:    every Deployment states CPU requests and has an HPA; no Deployment or overlay
              sets replicas the HPA owns; prod PodDisruptionBudgets leave a pod to evict at
              minReplicas.
- scraping:   every Deployment is scraped (every process serves /metrics), on a port it has,
              that its PodMonitor names and that a NetworkPolicy opens to the monitoring
              namespace.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import promql_parser
import yaml  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
K8S_DIR = ROOT / "deploy" / "k8s"
BASE_DIR = K8S_DIR / "base"
PROD_DIR = K8S_DIR / "overlays" / "prod"
K8S_README = K8S_DIR / "README.md"
DASHBOARD = ROOT / "deploy" / "grafana" / "visiona.json"
CRD_SCHEMAS = ROOT / "deploy" / "schemas" / "prometheus-operator.json"
CRD_GROUP = "monitoring.coreos.com/"
MIN_FOR = timedelta(minutes=5)
SEVERITIES = {"critical", "warning", "info"}
MIN_SCHEMA_VERSION = 39
# The namespace Prometheus scrapes from (base/network-policies.yaml, `metrics-scrape`).
MONITORING_NAMESPACE = {"kubernetes.io/metadata.name": "monitoring"}


# The metrics the services export (name: type, labels), read from visiona.kit.metrics where
# they are registered, so an alert or a panel cannot name one the code does not have.
# Histograms also answer to _bucket (with le), _sum and _count.
def _catalogue() -> dict[str, tuple[str, frozenset[str]]]:
    from prometheus_client.metrics import MetricWrapperBase

    from visiona.kit import metrics

    found: dict[str, tuple[str, frozenset[str]]] = {}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            kind = value._type  # prometheus-client keeps these three there
            name = value._name + ("_total" if kind == "counter" else "")
            found[name] = (kind, frozenset(value._labelnames))
    # Written by Prometheus itself for every target.
    found["up"] = ("gauge", frozenset())
    return found


METRICS = _catalogue()
# What the scrape adds to every series: the PodMonitors' relabelings (service, job) and the
# operator's own target labels.
TARGET_LABELS = frozenset(
    ["service", "job", "instance", "pod", "namespace", "container", "endpoint"]
)
# Grafana's interval variables cannot stand in a range for the parser: a plausible value does.
GRAFANA_INTERVALS = re.compile(r"\$\{?(__rate_interval|__interval|__range)\b\}?")

Problems = list[str]
FileReport = Callable[[str, Path, Problems, str], None]


def _docs(path: Path) -> list[dict[str, Any]]:
    with path.open() as handle:
        return [d for d in yaml.safe_load_all(handle) if isinstance(d, dict)]


# --- Prometheus Operator objects -------------------------------------------------------------


def is_crd_kind(doc: dict[str, Any]) -> bool:
    return str(doc.get("apiVersion", "")).startswith(CRD_GROUP)


def validate_crd(doc: dict[str, Any], *, is_patch: bool) -> Problems:
    """A Prometheus Operator object against its vendored schema (patches: no required)."""
    name = f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name', '?')}"
    schema = json.loads(CRD_SCHEMAS.read_text()).get(doc.get("kind"))
    if schema is None or schema["properties"]["apiVersion"]["const"] != doc.get("apiVersion"):
        return [f"{name}: no vendored schema for {doc.get('apiVersion')} {doc.get('kind')}"]
    validator_class: Any = jsonschema.Draft202012Validator
    if is_patch:
        validator_class = jsonschema.validators.extend(
            validator_class, validators={"required": lambda *_: ()}
        )
    errors = sorted(validator_class(schema).iter_errors(doc), key=lambda e: list(e.path))
    where = [".".join(str(p) for p in e.absolute_path) or "<root>" for e in errors]
    problems = [f"{name}: {w}: {e.message}" for w, e in zip(where, errors, strict=True)]
    if not problems and doc.get("kind") == "PrometheusRule":
        problems += [f"{name}: {p}" for p in _check_rules(doc)]
    return problems


# --- PromQL ----------------------------------------------------------------------------------


def _metric(name: str) -> tuple[str, frozenset[str]] | None:
    """The catalogued metric a series name belongs to, and the labels it may carry."""
    if name in METRICS:
        return name, METRICS[name][1] | TARGET_LABELS
    for suffix, extra in (("_bucket", {"le"}), ("_sum", set()), ("_count", set())):
        base = name.removesuffix(suffix)
        if base != name and METRICS.get(base, ("", None))[0] == "histogram":
            return base, METRICS[base][1] | TARGET_LABELS | extra
    return None


def check_promql(expr: str) -> Problems:
    """Parse ``expr`` and check every selector against METRICS."""
    text = GRAFANA_INTERVALS.sub("5m", expr)
    try:
        tree = promql_parser.parse(text)
    except ValueError as exc:
        return [f"does not parse ({exc}): {expr}"]
    problems: Problems = []

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            if not node.name:
                problems.append(f"a selector without a metric name: {node}")
                return True
            found = _metric(node.name)
            if found is None:
                problems.append(f"metric {node.name!r} is not in the catalogue: {expr}")
                return True
            for matcher in node.matchers.matchers:
                if matcher.name not in found[1]:
                    problems.append(f"{node.name} has no label {matcher.name!r}: {expr}")
        return True

    promql_parser.walk(tree, visit)
    return problems


# --- alerts ----------------------------------------------------------------------------------


def _runbook_anchors() -> set[str]:
    """GitHub-style anchors of the README's headings."""
    headings = re.findall(r"(?m)^#+\s+(.+?)\s*$", K8S_README.read_text())
    return {re.sub(r"[^a-z0-9 _-]", "", h.lower()).replace(" ", "-") for h in headings}


def _check_rules(doc: dict[str, Any]) -> Iterator[str]:
    anchors = _runbook_anchors()
    seen: set[str] = set()
    for group in doc["spec"].get("groups") or []:
        for rule in group.get("rules") or []:
            name = rule.get("alert") or rule.get("record") or "?"
            where = f"{group.get('name')}/{name}"
            yield from (f"{where}: {p}" for p in check_promql(str(rule.get("expr", ""))))
            if "alert" not in rule:
                continue
            if name in seen:
                yield f"{where}: a second alert of this name"
            seen.add(name)
            severity = (rule.get("labels") or {}).get("severity")
            if severity not in SEVERITIES:
                yield f"{where}: severity {severity!r} is not one of {sorted(SEVERITIES)}"
            annotations = rule.get("annotations") or {}
            for key in ("summary", "description", "runbook_url"):
                if not str(annotations.get(key, "")).strip():
                    yield f"{where}: no {key} annotation"
            anchor = str(annotations.get("runbook_url", "")).partition("#")[2]
            if annotations.get("runbook_url") and anchor not in anchors:
                yield f"{where}: runbook_url #{anchor} is no heading of deploy/k8s/README.md"
            duration = promql_parser.parse_duration(str(rule.get("for", "0s")))
            if duration < MIN_FOR:
                yield f"{where}: for {rule.get('for', '0s')!r}: a blip would fire it (<{MIN_FOR})"


# --- the Grafana dashboard -------------------------------------------------------------------


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels") or [])


def check_dashboard(report: FileReport) -> None:
    try:
        board = json.loads(DASHBOARD.read_text())
    except (OSError, ValueError) as exc:
        report("dashboard", DASHBOARD, [f"cannot load: {exc}"], "")
        return
    problems: Problems = []
    if (
        not isinstance(board.get("schemaVersion"), int)
        or board["schemaVersion"] < MIN_SCHEMA_VERSION
    ):
        problems.append(f"schemaVersion {board.get('schemaVersion')!r} < {MIN_SCHEMA_VERSION}")
    if not board.get("uid") or not board.get("title"):
        problems.append("no uid or title")
    variables = {v.get("name"): v for v in (board.get("templating") or {}).get("list") or []}
    if (variables.get("datasource") or {}).get("type") != "datasource":
        problems.append("no `datasource` variable of type datasource")
    elif (variables["datasource"].get("query")) != "prometheus":
        problems.append("the `datasource` variable does not list Prometheus data sources")
    service = variables.get("service") or {}
    if service.get("type") != "query":
        problems.append("no `service` variable of type query")
    else:
        problems += [f"variable service: {p}" for p in check_promql(_variable_query(service))]
    ids: set[int] = set()
    panels = list(_panels(board.get("panels") or []))
    queries = 0
    for panel in panels:
        title = f"panel {panel.get('id')} {panel.get('title')!r}"
        if panel.get("id") in ids:
            problems.append(f"{title}: id used twice")
        ids.add(panel.get("id"))
        if "gridPos" not in panel:
            problems.append(f"{title}: no gridPos")
        if panel.get("type") == "row":
            continue
        if (panel.get("datasource") or {}).get("uid") != "${datasource}":
            problems.append(f"{title}: datasource is not ${{datasource}}")
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{title}: no queries")
        for target in targets:
            queries += 1
            if (target.get("datasource") or {}).get("uid", "${datasource}") != "${datasource}":
                problems.append(f"{title}: a query's datasource is not ${{datasource}}")
            problems += [f"{title}: {p}" for p in check_promql(str(target.get("expr", "")))]
    rows = sum(p.get("type") == "row" for p in panels)
    report("dashboard", DASHBOARD, problems, f"{rows} rows, {queries} queries")


def _variable_query(variable: dict[str, Any]) -> str:
    """The PromQL inside a Grafana query variable (``label_values(<selector>, label)``)."""
    query = variable.get("query")
    text = query.get("query", "") if isinstance(query, dict) else str(query or "")
    found = re.fullmatch(r"\s*label_values\((.+),\s*\w+\)\s*", text)
    return found.group(1) if found else text


# --- scaling and scraping --------------------------------------------------------------------


def _kinds(folder: Path, kind: str) -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(folder.glob("*.yaml")):
        for doc in _docs(path):
            if doc.get("kind") == kind and path.name != "kustomization.yaml":
                found[doc["metadata"]["name"]] = doc
    return found


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels, matchExpressions) selects ``labels``."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, values = expression["key"], expression.get("values") or []
        found = {
            "In": labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }.get(expression["operator"], False)
        if not found:
            return False
    return True


def _open_to_prometheus(
    policies: list[dict[str, Any]], pod: dict[str, str], ports: dict[str, int], port: int
) -> bool:
    """Whether the NetworkPolicies let the monitoring namespace's pods reach ``port`` of a pod
    labelled ``pod`` (named ports resolve in the pod, by ``ports``). A pod no policy isolates
    is open to all; a source that also selects pods or addresses is not counted (Prometheus's
    own labels are the cluster's)."""
    isolating = [
        p["spec"]
        for p in policies
        if _selects(p["spec"].get("podSelector") or {}, pod)
        and "Ingress" in p["spec"].get("policyTypes", ["Ingress"])
    ]
    if not isolating:
        return True
    for spec in isolating:
        for rule in spec.get("ingress") or []:
            sources = rule.get("from") or []
            admitted = not sources or any(
                set(s) == {"namespaceSelector"}
                and _selects(s["namespaceSelector"] or {}, MONITORING_NAMESPACE)
                for s in sources
            )
            rule_ports = rule.get("ports") or [{}]
            if admitted and any(
                "port" not in p or ports.get(p["port"], p["port"]) == port for p in rule_ports
            ):
                return True
    return False


def check_scaling(report: FileReport) -> None:
    deployments = _kinds(BASE_DIR, "Deployment")
    policies = list(_kinds(BASE_DIR, "NetworkPolicy").values())
    hpas = _kinds(BASE_DIR, "HorizontalPodAutoscaler")
    prod_hpas = _kinds(PROD_DIR, "HorizontalPodAutoscaler")
    pdbs = _kinds(PROD_DIR, "PodDisruptionBudget")
    monitors = _kinds(K8S_DIR / "components" / "prometheus-operator", "PodMonitor")
    prod = yaml.safe_load((PROD_DIR / "kustomization.yaml").read_text())
    problems: Problems = []
    for name, deployment in deployments.items():
        spec = deployment["spec"]
        template = spec["template"]
        containers = template["spec"]["containers"]
        ports = {
            p.get("name"): p["containerPort"] for c in containers for p in c.get("ports") or []
        }
        for container in containers:
            if not ((container.get("resources") or {}).get("requests") or {}).get("cpu"):
                problems.append(f"{name}/{container['name']}: no CPU request (the HPA's base)")
        hpa = hpas.get(name)
        if hpa is None or hpa["spec"]["scaleTargetRef"] != {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }:
            problems.append(f"{name}: no HorizontalPodAutoscaler targets it")
        if "replicas" in spec:
            problems.append(f"{name}: spec.replicas fights its autoscaler")
        floor = (prod_hpas.get(name) or {}).get("spec", {}).get("minReplicas", 1)
        pdb = (pdbs.get(name) or {}).get("spec", {})
        if pdb.get("minAvailable", 0) >= floor:
            problems.append(
                f"{name}: prod PDB minAvailable {pdb['minAvailable']} blocks drains at {floor}"
            )
        annotations = template["metadata"].get("annotations") or {}
        if annotations.get("prometheus.io/scrape") != "true":
            problems.append(
                f"{name}: not scraped (prometheus.io/scrape): every process has metrics"
            )
        else:
            port = int(annotations.get("prometheus.io/port", 0))
            if port not in ports.values():
                problems.append(f"{name}: prometheus.io/port is none of its container ports")
            elif not _open_to_prometheus(policies, template["metadata"]["labels"], ports, port):
                problems.append(
                    f"{name}: no NetworkPolicy lets the monitoring namespace reach {port}"
                )
            monitor = monitors.get(name)
            endpoint_ports = [
                e.get("port")
                for e in (monitor or {}).get("spec", {}).get("podMetricsEndpoints", [])
            ]
            if not endpoint_ports or any(p not in ports for p in endpoint_ports):
                problems.append(f"{name}: no PodMonitor scrapes one of its named ports")
    fighting = [r["name"] for r in prod.get("replicas") or [] if r.get("name") in hpas]
    if fighting:
        problems.append(f"overlays/prod sets replicas of {fighting}: their HPAs own the count")
    report("scaling", BASE_DIR, problems, f"{len(hpas)} autoscalers, {len(monitors)} PodMonitors")
