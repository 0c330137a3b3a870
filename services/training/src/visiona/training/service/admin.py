"""Operators' use cases on trainings (models): the stuck ones across users, retry one, fail
one (billing releases its credits). The rules are the kit's (visiona.kit.jobadmin); this
names training's rows, how one is saved, and which statuses are final."""

from __future__ import annotations

from visiona.kit.jobadmin import JobAdmin
from visiona.training.domain.model import TERMINAL, Model
from visiona.training.jobs.model import ModelJobs
from visiona.training.repository import model as models

FINAL = frozenset(s.value for s in TERMINAL)


def model_admin(jobs: ModelJobs) -> JobAdmin[Model]:
    return JobAdmin(jobs.db, models.ROWS, models.save, jobs.wake, terminal=FINAL)
