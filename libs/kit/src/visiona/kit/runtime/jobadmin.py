"""The gRPC face of :class:`visiona.kit.jobadmin.JobAdmin` (``visiona.admin.v1.JobAdminService``),
one servicer for every service with paid provider jobs (training's models, generation's
generations). Only the system principal may call: the gateway's ``/v1/admin`` routes, which let
only operators in."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import grpc

from visiona.admin.v1 import admin_pb2, admin_pb2_grpc
from visiona.kit.aggregate import ProviderJob
from visiona.kit.grpcserver import require_system, timestamp
from visiona.kit.jobadmin import JobAdmin


def job_message(job: ProviderJob) -> admin_pb2.Job:
    return admin_pb2.Job(
        id=str(job.id),
        user_id=job.user_id,
        status=job.status,
        work=job.work or "",
        work_after=timestamp(job.work_after),
        work_attempts=job.work_attempts,
        leased=job.lease_until is not None and job.lease_until > datetime.now(UTC),
        provider_status=job.provider_status or "",
        provider_seen_at=timestamp(job.provider_seen_at),
        failure_reason=job.failure_reason or "",
        created_at=timestamp(job.created_at),
        updated_at=timestamp(job.updated_at),
    )


class JobAdminServicer(admin_pb2_grpc.JobAdminServiceServicer):  # type: ignore[misc]
    """Operators' tools over one service's jobs: the system principal only."""

    def __init__(self, admin: JobAdmin[Any]) -> None:
        self.admin = admin

    async def ListStuckJobs(
        self, request: admin_pb2.ListStuckJobsRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ListStuckJobsResponse:
        require_system()
        jobs, token = await self.admin.stuck(
            older_than_s=request.older_than_s,
            work=request.work,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return admin_pb2.ListStuckJobsResponse(
            jobs=[job_message(job) for job in jobs], next_page_token=token
        )

    async def RetryJob(
        self, request: admin_pb2.RetryJobRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.RetryJobResponse:
        require_system()
        outcome = await self.admin.retry(request.job_id)
        return admin_pb2.RetryJobResponse(job=job_message(outcome.job))

    async def FailJob(
        self, request: admin_pb2.FailJobRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.FailJobResponse:
        require_system()
        outcome = await self.admin.fail(request.job_id)
        return admin_pb2.FailJobResponse(job=job_message(outcome.job), failed=outcome.changed)

    async def ListUserJobs(
        self, request: admin_pb2.ListUserJobsRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ListUserJobsResponse:
        require_system()
        jobs, token = await self.admin.of_user(
            request.user_id, page_size=request.page_size, page_token=request.page_token
        )
        return admin_pb2.ListUserJobsResponse(
            jobs=[job_message(job) for job in jobs], next_page_token=token
        )
