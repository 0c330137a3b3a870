"""Alembic environment: the kit runs it in this service's schema with its own version table."""

from visiona.kit.migrations import run_env

run_env()
