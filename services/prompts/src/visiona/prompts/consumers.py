"""The events the prompts service consumes: the gateway's erasure and export requests (the
work itself is in :mod:`visiona.prompts.account`)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from visiona.kit.consumer import EventHandler
from visiona.kit.events import ErasureRequestedV1, Event, ExportRequestedV1
from visiona.kit.storage import Storage
from visiona.prompts.account.erasure import erase_account
from visiona.prompts.account.export import export_account

ACCOUNT_CONSUMER = "prompts.account"


def account_handlers(storage: Storage | None) -> Mapping[type[Event], EventHandler]:
    return {
        ErasureRequestedV1: erase_account,
        ExportRequestedV1: partial(export_account, storage),
    }
