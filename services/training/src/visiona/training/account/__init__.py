"""The user's own data: training's part in the erasure and export sagas (visiona.kit.erasure).

No delivery is held while work is done: each request becomes a row that is its own job
(:class:`visiona.kit.jobs.RowJobs`), written in the consumer's transaction, and the message
is acked. A crash anywhere leaves the row; its lease lapses and a worker resumes it. Every
phase is idempotent. :mod:`.erasure` and :mod:`.export` describe each.
"""

from __future__ import annotations

from collections.abc import Mapping

from visiona.kit.consumer import EventHandler
from visiona.kit.events import ErasureRequestedV1, Event, ExportRequestedV1
from visiona.training.account.erasure import ErasureJobs, forget_old_answers
from visiona.training.account.export import ExportJobs

ACCOUNT_CONSUMER = "training.account"

__all__ = [
    "ACCOUNT_CONSUMER",
    "ErasureJobs",
    "ExportJobs",
    "account_handlers",
    "forget_old_answers",
]


def account_handlers(
    erasures: ErasureJobs, exports: ExportJobs
) -> Mapping[type[Event], EventHandler]:
    return {
        ErasureRequestedV1: erasures.requested,
        ExportRequestedV1: exports.requested,
    }
