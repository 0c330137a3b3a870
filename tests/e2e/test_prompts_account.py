"""The prompts service's part in the user's erasure and export sagas, driven through the bus as
the gateway drives them: the user's enhancements, cached answers, moderation decisions and
published events go, nobody else's; an export part holds the user's enhancements and
moderation decisions only."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from tests.e2e.saga_helpers import EventProbe, purged_by, unique_name, wait_seen
from tests.e2e.test_prompts import (
    Prompts,
    prepare,
    prompts,  # noqa: F401 - fixture
)
from tests.e2e.training_helpers import objects_under, read_object
from tests.support.rows import rows_naming
from tests.support.stack import RunningStack
from tests.support.waiting import eventually, wait_for
from visiona.kit.events import (
    ErasureRequestedV1,
    Event,
    PromptsAccountExportedV1,
    PromptsAccountPurgedV1,
)

PURGED = PromptsAccountPurgedV1.routing_key
EXPORTED = PromptsAccountExportedV1.routing_key


async def prompt_history(stack: RunningStack, stub: Prompts, user: str) -> dict[str, str]:
    """An enhancement through the gateway, an enhanced and cached PreparePrompt, and a prompt
    refused by the rules: one row or more in every table that names a user."""
    uid = f"user_{user}"
    async with httpx.AsyncClient(base_url=stack.url, headers=stack.auth(user)) as client:
        enhanced = await client.post(
            "/v1/prompts/enhance", json={"prompt": f"a portrait of {user} at dawn"}, timeout=30
        )
    assert enhanced.status_code in (200, 201), enhanced.text
    prepared = await prepare(stub, f"me and {user} on a boat", user=uid, pack="cinematic")
    assert prepared.enhanced and prepared.enhancement_id
    refused = await prepare(stub, "me d3c@pitated, g.o.r.e", user=uid)
    assert refused.refused
    wait_for(
        f"{user}'s events to be published",
        lambda: stack.admin_sql(
            "SELECT count(*) FROM prompts.outbox WHERE published_at IS NULL "
            "AND payload->>'user_id' = %s",
            uid,
        ),
        lambda rows: rows == [(0,)],
    )
    return {"enhancement": str(enhanced.json()["id"]), "prepared": prepared.enhancement_id}


async def wait_published(stack: RunningStack, timeout_s: float = 20) -> None:
    """Until the prompts relay has published everything in its outbox."""
    await eventually(
        "the prompts outbox to drain",
        lambda: (
            stack.admin_sql("SELECT count(*) FROM prompts.outbox WHERE published_at IS NULL")
            == [(0,)]
        ),
        timeout_s,
    )


def purged(deletion_id: uuid.UUID, round_: int) -> Callable[[Event], bool]:
    return purged_by(PromptsAccountPurgedV1, deletion_id, round_)


async def test_erasure_removes_the_users_prompts_and_nobody_elses(
    stack: RunningStack,
    prompts: Prompts,  # noqa: F811
) -> None:
    a, b = unique_name("forgotten"), unique_name("remembered")
    a_id, b_id = f"user_{a}", f"user_{b}"
    await prompt_history(stack, prompts, a)
    await prompt_history(stack, prompts, b)
    assert set(rows_naming(stack.admin_sql, "prompts", a_id)) == {
        "enhancements",
        "prompt_cache",
        "moderation_decisions",
        "outbox",
    }
    b_rows = rows_naming(stack.admin_sql, "prompts", b_id)

    deletion = uuid.uuid4()
    async with EventProbe(stack, [PURGED]) as probe:
        await probe.publish(ErasureRequestedV1(user_id=a_id, deletion_id=deletion, round=1))
        first = await probe.wait_for(purged(deletion, 1))
        # 2 enhancements, 1 cached answer, 1 moderation decision, 2 published events
        assert first.removed == 6 and first.user_id is None
        assert rows_naming(stack.admin_sql, "prompts", a_id) == {}
        assert rows_naming(stack.admin_sql, "prompts", b_id) == b_rows
        # The cache no longer answers the user: the same request asks the LLM again.
        again = await prepare(prompts, f"me and {a} on a boat", user=a_id, pack="cinematic")
        assert again.enhancement_id

        # That request was made after round 1 (as an in-flight one would be): round 2 takes
        # it, round 3 finds nothing, and a round asked again is answered again.
        # (Its event is let out first: a published event is what a round forgets.)
        await wait_published(stack)
        await probe.publish(ErasureRequestedV1(user_id=a_id, deletion_id=deletion, round=2))
        second = await probe.wait_for(purged(deletion, 2))
        assert second.removed >= 2
        for _ in range(2):
            await probe.publish(ErasureRequestedV1(user_id=a_id, deletion_id=deletion, round=3))
        third = await wait_seen(probe, purged(deletion, 3), 2)
        assert [e.removed for e in third] == [0, 0]
    assert rows_naming(stack.admin_sql, "prompts", a_id) == {}
    assert rows_naming(stack.admin_sql, "prompts", b_id) == b_rows


async def test_export_part_holds_the_users_enhancements_and_refusals_only(
    stack: RunningStack,
    prompts: Prompts,  # noqa: F811
) -> None:
    a, b = unique_name("prompt-exporter"), unique_name("prompt-bystander")
    a_id, b_id = f"user_{a}", f"user_{b}"
    a_ids = await prompt_history(stack, prompts, a)
    await prompt_history(stack, prompts, b)

    export_id = uuid.uuid4()
    async with EventProbe(stack, [EXPORTED]) as probe:
        done = await probe.export(PromptsAccountExportedV1, a_id, export_id)
        assert done.user_id == a_id and done.prefix == f"exports/{export_id}/prompts/"
        listing = objects_under(stack, done.prefix)
        assert set(listing) == {
            f"{done.prefix}records/enhancements.json",
            f"{done.prefix}records/moderation_decisions.json",
        }
        assert (done.objects, done.bytes) == (2, sum(listing.values()))

        def records(name: str) -> list[dict[str, Any]]:
            return list(json.loads(read_object(stack, f"{done.prefix}records/{name}.json")))

        enhancements = records("enhancements")
        assert {e["id"] for e in enhancements} == {a_ids["enhancement"], a_ids["prepared"]}
        assert {e["user_id"] for e in enhancements} == {a_id}
        assert any(e["prompt"] == f"a portrait of {a} at dawn" for e in enhancements)
        assert all(e["enhanced_prompt"] and e["created_at"] for e in enhancements)
        (refusal,) = records("moderation_decisions")
        assert (refusal["user_id"], refusal["source"], refusal["category"]) == (
            a_id,
            "rules",
            "violence_gore",
        )
        assert b_id not in json.dumps([enhancements, refusal]) and b not in json.dumps(
            [enhancements, refusal]
        )
