"""Every request body model of the gateway, and every model nested in one, refuses unknown
fields and coerces nothing; the OpenAPI document says so (``additionalProperties: false``).
Found by walking the app's routes, so a route added later is held to it too. Through the
running stack, per route group: tests/e2e/test_strict_inputs.py."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from typing import Any

from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel

from visiona.gateway.app import create_app


def nested_models(annotation: Any) -> Iterator[type[BaseModel]]:
    """The models in an annotation: itself, inside list[...], X | None, and their fields."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        for field in annotation.model_fields.values():
            yield from nested_models(field.annotation)
        return
    origin = typing.get_origin(annotation)
    if origin is not None or isinstance(annotation, types.UnionType):
        for argument in typing.get_args(annotation):
            yield from nested_models(argument)


def body_models() -> dict[str, type[BaseModel]]:
    models: dict[str, type[BaseModel]] = {}
    for context in iter_route_contexts(create_app().routes):
        route = context.original_route
        if isinstance(route, APIRoute) and route.body_field is not None:
            for model in nested_models(route.body_field.field_info.annotation):
                models[model.__name__] = model
    return models


def test_every_request_body_model_is_strict_and_closed() -> None:
    models = body_models()
    assert {
        "CreateGenerationRequest",
        "ImagePatch",
        "UploadsRequest",
        "UploadSpec",
        "CreateModelRequest",
        "RenameModelRequest",
        "CheckoutRequest",
        "EnhanceRequest",
    } <= set(models)
    lax = {
        name: dict(model.model_config)
        for name, model in models.items()
        if model.model_config.get("extra") != "forbid"
        or model.model_config.get("strict") is not True
    }
    assert lax == {}


def test_the_openapi_document_closes_every_request_body() -> None:
    schemas = create_app().openapi()["components"]["schemas"]
    for name in body_models():
        assert schemas[name].get("additionalProperties") is False, name


def test_a_json_integer_is_still_a_number() -> None:
    # Strict is about strings and booleans standing for numbers, not JSON's 1 for 1.0.
    model = body_models()["CreateGenerationRequest"]
    made = model.model_validate({"model_id": "m", "prompt": "p", "lora_scale": 1})
    assert made.lora_scale == 1.0  # type: ignore[attr-defined]
