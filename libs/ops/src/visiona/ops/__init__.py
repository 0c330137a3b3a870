"""Operations on a whole Visiona deployment: backups, restores, and checks of a restore.

Unlike the services, these tools act as an administrator: the backup reads every row of
every schema (a role with BYPASSRLS and ``pg_read_all_data``), the restore creates a database
and its roles (docs/adr/0014-backups-and-restore.md).
"""
