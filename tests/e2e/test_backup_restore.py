"""Backup → restore → verify, on the session stack (issue 17 part 3, docs/adr/0014).

Users pay on Stripe's hosted page, train a model and generate images; ``visiona-ops backup``
takes a backup as a dedicated backup role (BYPASSRLS + pg_read_all_data, no app role); one user
is erased after it; ``visiona-ops restore`` fills a fresh database and bucket; a second set of
service processes (the same emulators, small pools: tests/support/budget.py) serves them, and
through its gateway every balance, model and image is as it was, RLS and the roles hold, and
the user erased after the backup is erased again (the erasure journal) instead of coming back.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from tests.e2e.test_account_erasure import (
    keys_naming,
    needles_of,
    populate,
    request_deletion,
    rows_naming,
    sub,
    wait_erased,
)
from tests.e2e.test_billing import balance, buy_starter, ledger, wait_balance
from tests.e2e.training_helpers import storage
from tests.support.budget import RESTORED_STACK_POOL_ENV
from tests.support.infra import Infra, purge_broker
from tests.support.stack import RunningStack
from visiona.emulators.ports import free_port
from visiona.emulators.stack import LocalStack, bin_path
from visiona.kit.provision import BACK_SERVICES, SERVICES, drop
from visiona.ops.erasures import subject_of

RESTORED_PROCESSES = (*BACK_SERVICES, "gateway")


def ops(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [bin_path("visiona-ops"), *args],
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    if check:
        assert done.returncode == 0, f"visiona-ops {args[0]}: {done.stdout}\n{done.stderr}"
    return done


@contextlib.contextmanager
def backup_role(stack: RunningStack) -> Iterator[str]:
    """The role backups run as: reads every row (pg_read_all_data) despite FORCE RLS
    (BYPASSRLS), owns nothing, writes nothing."""
    role = f"visiona_backup_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(stack.admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN BYPASSRLS IN ROLE pg_read_all_data").format(
                sql.Identifier(role)
            )
        )
    try:
        yield role
    finally:
        with psycopg.connect(stack.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@contextlib.contextmanager
def restored_stack(
    stack: RunningStack, infra: Infra, database: str, bucket: str, state: Path
) -> Iterator[RunningStack]:
    """The services and a gateway on the restored database and bucket, beside the session's,
    with the same emulators, keys and roles, and an exchange and queues of their own."""
    cfg = stack.cfg
    tag = f"r{uuid.uuid4().hex[:6]}"
    assert cfg.s3 is not None
    restored = dataclasses.replace(
        cfg,
        database=database,
        # Ports of their own, the back services' metrics ports included (the session's
        # services hold theirs).
        ports=cfg.ports
        | {name: free_port() for name in RESTORED_PROCESSES}
        | {f"{name}-metrics": free_port() for name in BACK_SERVICES},
        state_dir=state,
        exchange=f"{cfg.exchange}.{tag}",
        queue_prefix=f"{cfg.queue_prefix}{tag}.",
        s3=dataclasses.replace(cfg.s3, bucket=bucket),
        extra_env=cfg.extra_env | RESTORED_STACK_POOL_ENV,
    )
    processes = LocalStack(restored)
    try:
        for name in RESTORED_PROCESSES:
            processes.start(name)
        processes.wait_ready()
        yield RunningStack(restored, processes, stack.issuer, stack.admin_url)
    finally:
        processes.down()
        asyncio.run(purge_broker(infra, (restored.queue_prefix, restored.exchange)))


def image_bytes(stack: RunningStack, user: str) -> dict[str, bytes]:
    """Each of the user's images as the gateway serves it (its presigned URL, downloaded)."""
    images = httpx.get(f"{stack.url}/v1/images", headers=stack.auth(user)).json()["images"]
    assert images
    return {i["id"]: httpx.get(i["url"], timeout=30).content for i in images}


def journal_entries(stack: RunningStack) -> set[str]:
    s3 = storage(stack)
    assert stack.cfg.backup_bucket is not None
    return {
        str(o.object_name)
        for o in s3.client.list_objects(stack.cfg.backup_bucket, prefix="erasures/")
    }


@pytest.mark.timeout(1200)
def test_a_restored_backup_serves_everything_and_an_erasure_after_it_stays_erased(
    stack: RunningStack, infra: Infra, run_id: str, tmp_path: Path
) -> None:
    keeper = f"keeper{uuid.uuid4().hex[:6]}"
    leaver = f"leaver{uuid.uuid4().hex[:6]}"
    payer = f"payer{uuid.uuid4().hex[:6]}"
    kept = populate(stack, keeper)
    left = populate(stack, leaver)
    buy_starter(stack, payer)
    wait_balance(stack, payer, 200)
    before = {u: (balance(stack, u), ledger(stack, u)) for u in (keeper, payer)}
    pictures = image_bytes(stack, keeper)

    database = f"visiona_test_{run_id}_restored"
    bucket = f"visiona-restored-{run_id}".replace("_", "-").lower()
    env = stack.cfg.backup_env()
    s3 = storage(stack)
    try:
        with backup_role(stack) as role:
            env["BACKUP_DATABASE_URL"] = psycopg.conninfo.make_conninfo(
                env["BACKUP_DATABASE_URL"], user=role
            )
            taken = ops(env, "backup").stdout
        assert "lifecycle rule" in taken, taken
        (name,) = ops(env, "list").stdout.split()[-1:]
        manifest = json.loads(
            s3.client.get_object(stack.cfg.backup_bucket, f"dumps/{name}/manifest.json").read()
        )
        assert set(manifest["schema_versions"]) == set(SERVICES)
        assert manifest["objects"]["count"] > 0 and manifest["dump"]["bytes"] > 0
        # Encrypted at rest, like the services' own writes.
        dump = s3.client.stat_object(stack.cfg.backup_bucket, manifest["dump"]["key"])
        assert dump.metadata.get("x-amz-server-side-encryption") == "AES256", dump.metadata

        # Erased after the backup: the gateway's journal says so, outside the database.
        request_deletion(stack, leaver)
        wait_erased(stack, leaver)
        # Named by the keyed pseudonym the erasure receipt carries; no user id in it.
        subject = subject_of(stack.cfg.pseudonym_key.encode(), sub(leaver))
        assert f"erasures/{subject}.json" in journal_entries(stack)
        entry = s3.client.get_object(stack.cfg.backup_bucket, f"erasures/{subject}.json").read()
        assert json.loads(entry)["subject"] == subject and leaver not in entry.decode()

        # The admin restores (it creates the database); a target in use is refused.
        env["BACKUP_DATABASE_URL"] = stack.admin_url
        refused = ops(
            env,
            "restore",
            "--from",
            name,
            "--database",
            stack.cfg.database,
            "--bucket",
            bucket,
            check=False,
        )
        assert refused.returncode == 2 and "not empty" in refused.stderr, refused.stderr
        restored_out = ops(
            env, "restore", "--from", "latest", "--database", database, "--bucket", bucket
        ).stdout
        assert "1 erasures re-applied" in restored_out, restored_out
        checked = ops(env, "verify", "--database", database, "--bucket", bucket).stdout
        assert "verify: ok" in checked, checked

        with restored_stack(stack, infra, database, bucket, tmp_path) as again:
            # Balances and ledgers as they were; each image served, byte for byte.
            for user, (was, entries) in before.items():
                assert balance(again, user) == was
                assert ledger(again, user) == entries
            assert image_bytes(again, keeper) == pictures
            with httpx.Client(base_url=again.url, headers=again.auth(keeper)) as c:
                model = c.get(f"/v1/models/{kept['model']['id']}").json()
                assert model["status"] == "succeeded", model
            # RLS holds: another user's model and images are not found.
            with httpx.Client(base_url=again.url, headers=again.auth(payer)) as c:
                assert c.get(f"/v1/models/{kept['model']['id']}").status_code == 404
                assert c.get(f"/v1/images/{kept['images'][0]}").status_code == 404
                assert c.get("/v1/images").json()["images"] == []
            # The app roles are app roles: not even their own schema's rows without a user.
            url = again.service_url("billing")
            with psycopg.connect(url, autocommit=True) as conn:
                assert conn.execute("SELECT count(*) FROM billing.accounts").fetchone() == (0,)
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute("SELECT count(*) FROM gateway.accounts")

            # The user erased after the backup is erased again by the restored platform.
            done = wait_erased(again, leaver, timeout_s=180)
            assert done["status"] == "completed"
            needles = needles_of(leaver, left)
            assert rows_naming(again, needles) == []
            assert keys_naming(again, needles) == []
            assert rows_naming(again, [sub(keeper)]) != []
            assert balance(again, keeper) == before[keeper][0]

        # What the services did on the restored pair still verifies.
        checked = ops(env, "verify", "--database", database, "--bucket", bucket).stdout
        assert "verify: ok" in checked, checked
    finally:
        drop(stack.admin_url, database, [])
        for target in (bucket,):
            if s3.client.bucket_exists(target):
                keys = [str(o.object_name) for o in s3.client.list_objects(target, recursive=True)]
                for key in keys:
                    s3.client.remove_object(target, key)
                s3.client.remove_bucket(target)
        assert stack.cfg.backup_bucket is not None
        for obj in list(
            s3.client.list_objects(stack.cfg.backup_bucket, prefix="dumps/", recursive=True)
        ):
            s3.client.remove_object(stack.cfg.backup_bucket, str(obj.object_name))


def test_verify_finds_a_balance_that_is_not_its_ledger(stack: RunningStack, run_id: str) -> None:
    """verify fails (exit 1) on a mismatch, and names it."""
    user = f"drift{uuid.uuid4().hex[:6]}"
    buy_starter(stack, user)
    wait_balance(stack, user, 200)
    env = stack.cfg.backup_env() | {"BACKUP_DATABASE_URL": stack.admin_url}
    assert stack.cfg.s3 is not None
    ok = ops(env, "verify", "--database", stack.cfg.database, "--bucket", stack.cfg.s3.bucket)
    assert "verify: ok" in ok.stdout
    stack.admin_sql(
        "UPDATE billing.accounts SET balance = balance + 1 WHERE user_id = %s", sub(user)
    )
    try:
        bad = ops(
            env,
            "verify",
            "--database",
            stack.cfg.database,
            "--bucket",
            stack.cfg.s3.bucket,
            check=False,
        )
        assert bad.returncode == 1, bad.stdout
        assert f"billing account {sub(user)}" in bad.stdout
    finally:
        stack.admin_sql(
            "UPDATE billing.accounts SET balance = balance - 1 WHERE user_id = %s", sub(user)
        )
