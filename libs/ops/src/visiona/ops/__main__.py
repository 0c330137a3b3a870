"""``visiona-ops``: back up, restore and verify a Visiona deployment (BACKUP_* settings)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from visiona.ops import backup as backups
from visiona.ops import db, erasures
from visiona.ops import restore as restores
from visiona.ops import verify as verifier
from visiona.ops.settings import BackupSettings
from visiona.ops.store import Buckets

app = typer.Typer(no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False)


def _settings(retention_days: int | None = None) -> BackupSettings:
    if retention_days is None:
        return BackupSettings()
    return BackupSettings(retention_days=retention_days)


@app.command()
def backup(
    retention_days: Annotated[
        int | None, typer.Option(help="days a backup is kept (BACKUP_RETENTION_DAYS)")
    ] = None,
) -> None:
    """Dump the database and copy the app bucket's objects into the backup bucket."""
    result = backups.take(_settings(retention_days))
    m = result.manifest
    typer.echo(
        f"backup {result.name}: database {m['database']} ({m['dump']['bytes']} bytes, "
        f"sha256 {m['dump']['sha256'][:12]}…), {m['objects']['count']} objects "
        f"({m['objects']['bytes']} bytes)"
    )
    typer.echo(
        "lifecycle rule: "
        + ("set on the bucket" if result.lifecycle else "not supported by the store")
        + f"; pruned {result.pruned[0]} backups and {result.pruned[1]} journal entries "
        "past the window"
    )


@app.command()
def prune(
    retention_days: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Delete the backups older than the retention window (and older journal entries)."""
    settings = _settings(retention_days)
    pruned = Buckets.from_settings(settings).prune(settings.retention_days)
    typer.echo(f"pruned {pruned[0]} backups and {pruned[1]} journal entries")


@app.command("list")
def list_backups() -> None:
    """The finished backups, oldest first."""
    for name in Buckets.from_settings(_settings()).backups_taken():
        typer.echo(name)


@app.command()
def restore(
    source: Annotated[str, typer.Option("--from", help="a backup's name, or latest")],
    database: Annotated[str, typer.Option(help="a database that does not exist or is empty")],
    bucket: Annotated[str, typer.Option(help="a bucket that does not exist or is empty")],
    role_suffix: Annotated[
        str | None, typer.Option(help="the roles' suffix (default: the backup's)")
    ] = None,
) -> None:
    """Restore a backup into a fresh database and bucket, and re-apply later erasures."""
    try:
        result = restores.run(_settings(), source, database, bucket, role_suffix=role_suffix)
    except restores.RestoreRefused as exc:
        typer.echo(f"restore refused: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(
        f"restored backup {result.name} into database {result.database} and bucket "
        f"{result.bucket}: {result.objects} objects; {len(result.reasserted)} ownership/RLS "
        f"statements re-asserted; {len(result.erasures_scheduled)} erasures re-applied "
        "(they run when the gateway starts)"
    )


@app.command("reapply-erasures")
def reapply_erasures(
    database: Annotated[str, typer.Option(help="a database recovered by other means (PITR)")],
) -> None:
    """Schedule again the erasures the journal holds, in a database not restored by this tool
    (e.g. recovered to a point in time): run it before the services start."""
    settings = _settings()
    url = db.with_database(settings.database_url.get_secret_value(), database)
    scheduled = erasures.reapply(
        url,
        settings.pseudonym_key.get_secret_value().encode(),
        erasures.journal(Buckets.from_settings(settings)),
    )
    typer.echo(f"{len(scheduled)} erasures re-applied (they run when the gateway starts)")


@app.command()
def verify(
    database: Annotated[str, typer.Option()],
    bucket: Annotated[str, typer.Option()],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check balances against ledgers, objects against rows, the roles and RLS."""
    report = verifier.run(_settings(), database, bucket)
    if as_json:
        typer.echo(json.dumps({"counts": report.counts, "problems": report.problems}))
    else:
        for line in report.lines():
            typer.echo(line)
    if not report.ok:
        raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
