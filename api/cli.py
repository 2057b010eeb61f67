"""Shell administration: `flask --app wsgi accounts create USERNAME --role ROLE --password-stdin`."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from api.accounts.models import Role
from api.accounts.services import create_account
from api.problems import ProblemError

accounts_cli = AppGroup("accounts", help="Manage accounts.")


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
