"""``visiona-training serve|migrate``."""

from __future__ import annotations

from visiona.admin.v1 import admin_pb2_grpc
from visiona.kit.metrics.sampler import JobKind
from visiona.kit.replicate import run_paid_jobs
from visiona.kit.runtime import Runtime, ServiceSpec, run_cli
from visiona.kit.runtime.jobadmin import JobAdminServicer
from visiona.training.account import (
    ACCOUNT_CONSUMER,
    ErasureJobs,
    ExportJobs,
    account_handlers,
    forget_old_answers,
)
from visiona.training.clients import BillingEntitlements
from visiona.training.config import TrainingSettings
from visiona.training.consumers import (
    CREDITS_CONSUMER,
    VERSIONS_CONSUMER,
    VersionChecks,
    credits_participant,
    webhook_inbox,
)
from visiona.training.domain.model import TERMINAL, ModelStatus
from visiona.training.domain.photo import PhotoStatus
from visiona.training.grpc_api import TrainingServicer
from visiona.training.jobs.legacy_keys import TrainingLegacyKeys
from visiona.training.jobs.model import ModelJobs
from visiona.training.jobs.retention import sweep_retention
from visiona.training.jobs.upload_sweep import UploadSweep, remove_abandoned_uploads
from visiona.training.providers.replicate import ReplicateSdk
from visiona.training.service.admin import model_admin
from visiona.training.service.model import ModelService
from visiona.training.service.photo import PhotoService
from visiona.training.v1 import training_pb2, training_pb2_grpc


async def setup(runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, TrainingSettings)
    storage = runtime.needs_storage()
    replicate = ReplicateSdk(settings)
    billing = BillingEntitlements(
        settings.billing_addr, settings.billing_deadline_s, runtime.minter
    )
    jobs = ModelJobs(runtime.db, storage, replicate, settings)
    photos = PhotoService(runtime.db, storage, settings)
    models = ModelService(runtime.db, billing, credits_ask_again_s=settings.credits_ask_again_s)
    webhooks = webhook_inbox(runtime.db, replicate, jobs, settings)
    training_pb2_grpc.add_TrainingServiceServicer_to_server(
        TrainingServicer(photos, models, webhooks, storage), runtime.server
    )
    admin_pb2_grpc.add_JobAdminServiceServicer_to_server(
        JobAdminServicer(model_admin(jobs)), runtime.server
    )
    run_paid_jobs(
        runtime,
        jobs,
        worker="model-jobs",
        credits_consumer=CREDITS_CONSUMER,
        credits=credits_participant(jobs.wake),
        legacy=TrainingLegacyKeys(runtime.db, storage),
    )
    runtime.add_consumer(VERSIONS_CONSUMER, VersionChecks(jobs.wake).handlers())
    erasures = ErasureJobs(runtime.db, storage, settings, wake_models=jobs.wake)
    exports = ExportJobs(runtime.db, storage, settings)
    runtime.add_consumer(ACCOUNT_CONSUMER, account_handlers(erasures, exports))
    runtime.add_worker("erasures", erasures.run)
    runtime.add_worker("exports", exports.run)
    runtime.add_periodic(
        "erasure-answers",
        3600.0,
        lambda: forget_old_answers(runtime.db, settings.erasure_answers_kept_s),
    )
    runtime.add_periodic(
        "abandoned-uploads",
        300.0,
        lambda: remove_abandoned_uploads(runtime.db, storage, settings.upload_abandoned_after_s),
    )
    uploads = UploadSweep(runtime.db, storage, batch=settings.upload_sweep_batch)
    runtime.add_periodic("upload-sweep", settings.upload_sweep_interval_s, uploads.sweep_once)
    runtime.add_periodic(
        "retention",
        settings.retention_sweep_interval_s,
        lambda: sweep_retention(
            runtime.db, storage, settings.photo_retention_s, batch=settings.retention_batch
        ),
    )
    runtime.closers.append(billing.close)
    for kind in JOB_KINDS:
        runtime.add_job_kind(kind)


# The job rows the metrics count: trainings (a deleted model's row is no job any more), and
# photo ingest (an upload slot is open until its photo is validated).
JOB_KINDS = (
    JobKind(
        "training",
        "models",
        tuple(s.value for s in ModelStatus),
        frozenset(s.value for s in TERMINAL),
        live="deleted_at IS NULL",
    ),
    JobKind(
        "ingest",
        "photos",
        tuple(s.value for s in PhotoStatus),
        frozenset(s.value for s in PhotoStatus if s is not PhotoStatus.UPLOADING),
    ),
)


SPEC = ServiceSpec("training", TrainingSettings, setup, proto=training_pb2, package=__file__)


def main() -> None:
    run_cli(SPEC)


if __name__ == "__main__":
    main()
