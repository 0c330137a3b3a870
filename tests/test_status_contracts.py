"""Every state of a state machine (a photo's, a model's, a generation's) and every kind of
ledger entry is the same in the service's domain, in its proto enum (which the gateway's
response model answers as strings, visiona.kit.protoenum), in the OpenAPI enum the web app is
typed from and in its database's CHECK constraint (the newest migration that sets it): a state
added in one place only (a model's ``unavailable``) would be answered as a 500 or refused by
the database."""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path
from typing import Any

import pytest

from visiona.billing.domain.ledger import ENTRY_KINDS
from visiona.billing.v1 import billing_pb2
from visiona.gateway.schemas import billing as billing_schemas
from visiona.gateway.schemas import generation as generation_schemas
from visiona.gateway.schemas import training as training_schemas
from visiona.generation.domain.generation import GenerationStatus
from visiona.generation.v1 import generation_pb2
from visiona.kit import protoenum
from visiona.training.domain import ModelStatus
from visiona.training.domain.photo import PhotoStatus, Status
from visiona.training.v1 import training_pb2

REPO = Path(__file__).resolve().parents[1]
OPENAPI = REPO / "web" / "lib" / "api" / "openapi.json"


def constraint_values(service: str, constraint: str, column: str) -> set[str]:
    """The values of ``constraint`` as the newest migration of ``service`` that sets it."""
    found: set[str] | None = None
    for migration in sorted((REPO / "services" / service / "migrations" / "versions").glob("*.py")):
        source = migration.read_text().split("def downgrade")[0]
        match = re.search(
            rf"CONSTRAINT {constraint} CHECK \(\s*{column} IN \(([^)]*)\)", source, re.S
        )
        if match:
            found = set(re.findall(r"'([a-z_]+)'", match.group(1)))
    assert found is not None, f"no migration of {service} sets {constraint}"
    return found


def openapi_values(schema: str, field: str) -> set[str]:
    """The enum of ``field`` in the OpenAPI schema ``schema`` (what the web app is typed from)."""
    spec = json.loads(OPENAPI.read_text())
    return set(spec["components"]["schemas"][schema]["properties"][field]["enum"])


@pytest.mark.parametrize(
    ("domain", "proto", "service", "constraint", "schema", "field"),
    [
        (
            {s.value for s in PhotoStatus},
            training_pb2.PhotoStatus,
            "training",
            "photo_status",
            "Photo",
            "status",
        ),
        (
            {s.value for s in ModelStatus},
            training_pb2.ModelStatus,
            "training",
            "model_status",
            "Model",
            "status",
        ),
        (
            {s.value for s in GenerationStatus},
            generation_pb2.GenerationStatus,
            "generation",
            "generation_status",
            "Generation",
            "status",
        ),
        (ENTRY_KINDS, billing_pb2.LedgerEntryKind, "billing", "ledger_kind", "LedgerEntry", "kind"),
    ],
    ids=["photo", "model", "generation", "ledger-entry"],
)
def test_every_layer_names_the_same_states(
    domain: set[str], proto: type[int], service: str, constraint: str, schema: str, field: str
) -> None:
    assert set(protoenum.strings(proto)) == domain
    assert constraint_values(service, constraint, field) == domain
    assert openapi_values(schema, field) == domain


def test_a_photo_verdict_is_every_photo_status_but_uploading() -> None:
    assert set(typing.get_args(Status)) == {s.value for s in PhotoStatus} - {"uploading"}


@pytest.mark.parametrize(
    ("response", "message", "field", "proto"),
    [
        (training_schemas.Photo, training_pb2.Photo, "status", training_pb2.PhotoStatus),
        (training_schemas.Model, training_pb2.Model, "status", training_pb2.ModelStatus),
        (
            generation_schemas.Generation,
            generation_pb2.Generation,
            "status",
            generation_pb2.GenerationStatus,
        ),
        (billing_schemas.LedgerEntry, billing_pb2.LedgerEntry, "kind", billing_pb2.LedgerEntryKind),
    ],
    ids=["photo", "model", "generation", "ledger-entry"],
)
def test_the_gateway_answers_each_proto_state_as_its_string(
    response: Any, message: Any, field: str, proto: type[int]
) -> None:
    for state in protoenum.strings(proto):
        answer = response.from_proto(message(**{field: protoenum.to_proto(proto, state)}))
        assert getattr(answer, field) == state
