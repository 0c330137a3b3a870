"""Every status a service can give a model or a generation is the same in its domain, in the
proto's documentation, in the gateway's response model (the OpenAPI enum) and in its
database's CHECK constraint (the newest migration that sets it): a state added in one place
only (a model's ``unavailable``) would be answered as a 500 or refused by the database."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest

from visiona.gateway.schemas import generation as generation_schemas
from visiona.gateway.schemas import training as training_schemas
from visiona.generation.domain.generation import GenerationStatus
from visiona.training.domain import ModelStatus

REPO = Path(__file__).resolve().parents[1]


def proto_statuses(proto: str, message: str) -> set[str]:
    """The statuses the comment above ``message``'s ``status`` field names."""
    text = (REPO / proto).read_text()
    body = text[text.index(f"message {message} {{") :]
    comment = re.search(r"((?:\s*//[^\n]*\n)+)\s*string status = \d+;", body)
    assert comment, f"{message}.status has no comment"
    words = re.findall(r"[a-z_]+", comment.group(1).split("(")[0])
    return {w for w in words if w not in ("or",)}


def constraint_statuses(service: str, constraint: str) -> set[str]:
    """The values of ``constraint`` as the newest migration of ``service`` that sets it."""
    found: set[str] | None = None
    for migration in sorted((REPO / "services" / service / "migrations" / "versions").glob("*.py")):
        source = migration.read_text().split("def downgrade")[0]
        match = re.search(
            rf"CONSTRAINT {constraint} CHECK \(\s*status IN \(([^)]*)\)", source, re.S
        )
        if match:
            found = set(re.findall(r"'([a-z_]+)'", match.group(1)))
    assert found is not None, f"no migration of {service} sets {constraint}"
    return found


@pytest.mark.parametrize(
    ("domain", "literal", "proto", "message", "service", "constraint"),
    [
        (
            {s.value for s in ModelStatus},
            training_schemas.ModelStatus,
            "proto/visiona/training/v1/training.proto",
            "Model",
            "training",
            "model_status",
        ),
        (
            {s.value for s in GenerationStatus},
            generation_schemas.GenerationStatus,
            "proto/visiona/generation/v1/generation.proto",
            "Generation",
            "generation",
            "generation_status",
        ),
    ],
)
def test_every_layer_names_the_same_statuses(
    domain: set[str], literal: object, proto: str, message: str, service: str, constraint: str
) -> None:
    assert set(typing.get_args(literal)) == domain
    assert proto_statuses(proto, message) == domain
    assert constraint_statuses(service, constraint) == domain
