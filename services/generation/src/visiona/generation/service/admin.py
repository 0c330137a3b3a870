"""Operators' use cases on generations: the stuck ones across users, retry one, fail one
(billing releases its credits). The rules are the kit's (visiona.kit.jobadmin); this names
generation's rows, how one is saved, and which statuses are final."""

from __future__ import annotations

from visiona.generation.domain.generation import Generation, GenerationStatus
from visiona.generation.jobs.generation import GenerationJobs
from visiona.generation.repository import generation as generations
from visiona.kit.jobadmin import JobAdmin

FINAL = frozenset(s.value for s in GenerationStatus if s.terminal)


def generation_admin(jobs: GenerationJobs) -> JobAdmin[Generation]:
    return JobAdmin(jobs.db, generations.ROWS, generations.save, jobs.wake, terminal=FINAL)
