"""A second user sees none of the first user's things: not on the dashboard, and not through
the API with the browser's own session, whatever ids it asks for."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
from playwright.sync_api import Page, expect

from tests.e2e.test_billing import balance
from tests.e2e.test_generation import AFTER_TRAINING, generate, ready_owner, wait_generation
from tests.e2e.training_helpers import api
from tests.support.stack import RunningStack
from tests.support.waiting import wait_for
from tests.support.web import (
    Screens,
    balance_chip,
    gateway_for_browser,
    new_user,
    visible_text,
)


def test_a_second_user_sees_none_of_the_first_users_things(
    stack: RunningStack, signed_in_page: Callable[[str], Page], shots: Screens
) -> None:
    first, model = ready_owner(stack, "owner")
    model_name = f"Portrait {uuid.uuid4().hex[:6]}"
    with api(stack, first) as c:
        renamed = c.patch(f"/v1/models/{model['id']}", json={"name": model_name})
        assert renamed.status_code == 200, renamed.text
        photo_id = c.get("/v1/photos").json()["photos"][0]["id"]
    generation = generate(stack, first, model_id=model["id"]).json()
    image_id = wait_generation(stack, first, generation["id"])["images"][0]["id"]
    # The generation's credits captured, nothing held any more.
    credits = wait_for(
        "the generation's credits to be captured",
        lambda: balance(stack, first),
        lambda b: b["held"] == 0 and b["balance"] < AFTER_TRAINING,
    )["available"]
    theirs = (
        f"/v1/models/{model['id']}",
        f"/v1/photos/{photo_id}",
        f"/v1/generations/{generation['id']}",
        f"/v1/images/{image_id}",
    )
    gateway = gateway_for_browser(stack)

    owner = signed_in_page(first)
    expect(owner.get_by_text(model_name)).to_be_visible()
    expect(owner.locator("section[aria-labelledby=images-title] img")).to_have_count(1)
    expect(balance_chip(owner, credits)).to_be_visible()
    for path in theirs:
        assert owner.request.get(f"{gateway}{path}").status == 200, path
    shots.take(owner, "dashboard-first-user")

    second = new_user("other")
    other = signed_in_page(second)
    expect(other.get_by_text("No models yet")).to_be_visible()
    expect(other.get_by_text("No images yet")).to_be_visible()
    expect(balance_chip(other, 0)).to_be_visible()
    assert model_name not in visible_text(other)
    shots.take(other, "dashboard-second-user")
    # The second user's browser session (its cookie), and its bearer token, on the first
    # user's ids: not found, as if they did not exist.
    for path in theirs:
        answer = other.request.get(f"{gateway}{path}")
        assert answer.status == 404, (path, answer.text())
        bearer = httpx.get(f"{stack.url}{path}", headers=stack.auth(second))
        assert bearer.status_code == 404, (path, bearer.text)
    for listing in ("/v1/models", "/v1/photos", "/v1/images", "/v1/generations"):
        listed = other.request.get(f"{gateway}{listing}").json()
        assert not [v for v in listed.values() if isinstance(v, list) and v], (listing, listed)
