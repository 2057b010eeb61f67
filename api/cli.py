"""Shell administration: `flask --app wsgi accounts create … --password-stdin`, `… robots sync`,
`… sessions purge`, `… idempotency-keys purge`, `… backup create PATH`, `… backup restore PATH`,
`… spec write PATH`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click
from flask.cli import AppGroup

from api import backup, idempotency
from api.accounts.models import Role
from api.accounts.services import create_account
from api.openapi import app_api, spec_yaml
from api.problems import ProblemError
from api.robots import services as robots
from api.schemas import rfc3339_utc
from security.sessions import purge_expired

accounts_cli = AppGroup("accounts", help="Manage accounts.")
robots_cli = AppGroup("robots", help="Manage the stored Robot CPU list.")
sessions_cli = AppGroup("sessions", help="Maintain the session table.")
backup_cli = AppGroup("backup", help="Back the database up, and restore a backup.")
spec_cli = AppGroup("spec", help="The OpenAPI document.")
idempotency_cli = AppGroup("idempotency-keys", help="Maintain the stored Idempotency-Key answers.")


@accounts_cli.command("create")
@click.argument("username")
@click.option(
    "--role", type=click.Choice([r.value for r in Role]), default=Role.SURVIVOR.value, show_default=True
)
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input (never argv).",
)
def create_account_command(username: str, role: str, password_stdin: bool) -> None:
    """Create an account with the password given on standard input."""
    if not password_stdin:
        raise click.UsageError("pass --password-stdin: passwords never go on the command line")
    password = sys.stdin.readline().rstrip("\r\n")
    try:
        account = create_account(username, password, role)
    except ProblemError as error:
        reasons = "; ".join(f"{k}: {' '.join(v)}" for k, v in (error.errors or {}).items())
        raise click.ClickException(f"{error.detail} {reasons}".strip()) from None
    click.echo(f"created {account.role.value} account {account.username} ({account.id})")


@robots_cli.command("sync")
def robots_sync_command() -> None:
    """Fetch the Robot CPU list now and store it; exits non-zero with the reason on failure."""
    try:
        summary = robots.refresh()
    except ProblemError as error:
        raise click.ClickException(error.detail) from None
    counts = summary["by_category"]
    fetched_at = rfc3339_utc(summary["fetched_at"])
    click.echo(
        f"synced {summary['total']} robots (Flying {counts['Flying']}, Land {counts['Land']}) at {fetched_at}"
    )


@sessions_cli.command("purge")
def sessions_purge_command() -> None:
    """Delete every session past its expiry (run it from cron; safe beside running servers)."""
    click.echo(f"purged {purge_expired()} expired sessions")


@backup_cli.command("create")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def backup_create_command(path: Path) -> None:
    """Write a consistent backup of the database to PATH (a new file, mode 0600); safe beside
    running servers."""
    _backing_up(backup.create, path)
    click.echo(f"backed up the database to {path} ({path.stat().st_size} bytes)")


@backup_cli.command("restore")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def backup_restore_command(path: Path) -> None:
    """Restore the backup at PATH into DATABASE_URL, which must be a new, empty database; stop
    the servers first. Every session ends: everyone logs in again."""
    _backing_up(backup.restore, path)
    click.echo(f"restored {path}; every session has ended, start the servers")


def _backing_up(action: Callable[[Path], None], path: Path) -> None:
    try:
        action(path)
    except backup.BackupError as error:
        raise click.ClickException(str(error)) from None


@idempotency_cli.command("purge")
def idempotency_purge_command() -> None:
    """Delete Idempotency-Key answers past their 24 hours (run it daily from cron; safe beside
    running servers)."""
    click.echo(f"purged {idempotency.purge_expired()} expired idempotency keys")


@spec_cli.command("write")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def spec_write_command(path: Path) -> None:
    """Write the OpenAPI document as YAML, in served order (`make openapi`: openapi.yaml)."""
    path.write_text(spec_yaml(app_api()), encoding="utf-8")
