"""``visiona-generation serve|migrate``."""

from __future__ import annotations

from visiona.admin.v1 import admin_pb2_grpc
from visiona.generation.account import account_jobs
from visiona.generation.clients import GrpcBackends
from visiona.generation.config import GenerationSettings
from visiona.generation.consumers import (
    ACCOUNT_CONSUMER,
    CREDITS_CONSUMER,
    AccountRequests,
    credits_participant,
    webhook_inbox,
)
from visiona.generation.domain.generation import GenerationStatus
from visiona.generation.grpc_api import GenerationServicer
from visiona.generation.jobs.generation import GenerationJobs
from visiona.generation.jobs.legacy_keys import GenerationLegacyKeys
from visiona.generation.jobs.sweep import ObjectSweep
from visiona.generation.providers.replicate import ReplicatePredictions
from visiona.generation.service.admin import generation_admin
from visiona.generation.service.generation import GenerationService
from visiona.generation.service.image import Gallery
from visiona.generation.v1 import generation_pb2, generation_pb2_grpc
from visiona.kit.metrics.sampler import JobKind
from visiona.kit.replicate import run_paid_jobs
from visiona.kit.runtime import Runtime, ServiceSpec, run_cli
from visiona.kit.runtime.jobadmin import JobAdminServicer


async def setup(runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, GenerationSettings)
    storage = runtime.needs_storage()
    predictions = ReplicatePredictions(settings)
    backends = GrpcBackends(settings)
    jobs = GenerationJobs(runtime.db, storage, predictions, settings)
    inbox = webhook_inbox(runtime.db, predictions, jobs, settings)
    generation_pb2_grpc.add_GenerationServiceServicer_to_server(
        GenerationServicer(
            GenerationService(
                runtime.db, backends, credits_ask_again_s=settings.credits_ask_again_s
            ),
            Gallery(runtime.db, storage, settings.url_ttl_s),
            inbox,
        ),
        runtime.server,
    )
    admin_pb2_grpc.add_JobAdminServiceServicer_to_server(
        JobAdminServicer(generation_admin(jobs)), runtime.server
    )
    run_paid_jobs(
        runtime,
        jobs,
        worker="generation-jobs",
        credits_consumer=CREDITS_CONSUMER,
        credits=credits_participant(jobs.wake),
        legacy=GenerationLegacyKeys(runtime.db, storage),
    )
    erasures, exports = account_jobs(runtime.db, storage, jobs)
    runtime.add_consumer(ACCOUNT_CONSUMER, AccountRequests(erasures.wake, exports.wake).handlers())
    runtime.add_worker("erasure-jobs", erasures.run)
    runtime.add_worker("export-jobs", exports.run)
    sweep = ObjectSweep(
        runtime.db,
        storage,
        grace_s=settings.object_sweep_grace_s,
        batch=settings.object_sweep_batch,
    )
    runtime.add_periodic("object-sweep", settings.object_sweep_interval_s, sweep.sweep_once)
    runtime.closers.append(backends.close)
    runtime.add_job_kind(GENERATION_JOBS)


# The job rows the metrics count (visiona_jobs{kind="generation"}).
GENERATION_JOBS = JobKind(
    "generation",
    "generations",
    tuple(s.value for s in GenerationStatus),
    frozenset(s.value for s in GenerationStatus if s.terminal),
)


SPEC = ServiceSpec("generation", GenerationSettings, setup, proto=generation_pb2, package=__file__)


def main() -> None:
    run_cli(SPEC)


if __name__ == "__main__":
    main()
