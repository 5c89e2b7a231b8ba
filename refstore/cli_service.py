"""Commands for the refstore service: ``serve``, ``db``, ``login``, accounts.

``serve`` and ``db upgrade`` run against a SQL catalog; ``login``,
``whoami``, ``token``, ``user``, ``team`` and ``project visibility`` talk
to the service that ``REFSTORE_URL`` names (``project delete`` and
``rename``, from :mod:`refstore.cli_projects`, work on any catalog).
:mod:`refstore.cli` adds them to the ``refstore`` group; exit codes are
those of :data:`refstore.cli_output.EXIT_CODES`.
"""

from __future__ import annotations

import datetime
import logging
import os
from pathlib import Path
from typing import Any

import click

from refstore import accounts, cli_projects
from refstore.catalog.access import VISIBILITIES, new_token
from refstore.cli_output import EXIT_CODES, handle_errors, print_json, print_table
from refstore.config import Settings, parse_size
from refstore.errors import ConfigError
from refstore.ttl import parse_duration

__all__ = ["COMMANDS"]


def _settings() -> Settings:
    return Settings.from_env()


def _database(url: str | None) -> str:
    """``--db``, else REFSTORE_URL when it names a database, else SQLite."""
    settings = _settings()
    chosen = url or settings.catalog_url
    if chosen.startswith(("http://", "https://")):
        raise ConfigError(
            f"{chosen} is a service, not a database: pass --db postgresql://... "
            "or sqlite:////path/catalog.db"
        )
    return chosen


def _interval(text: str) -> datetime.timedelta | None:
    if text.strip().lower() in ("0", "none", "never"):
        return None
    return parse_duration(text)


@click.command(epilog=EXIT_CODES)
@click.option("--db", "db_url", help="Catalog database [default: REFSTORE_URL].")
@click.option(
    "--blobs",
    "blob_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Blob store folder, shared by every process [default: REFSTORE_HOME/blobs].",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option(
    "--gc-interval",
    default="1h",
    show_default=True,
    help="Run TTL garbage collection this often (0: never).",
)
@click.option("--max-blob-size", default="5GiB", show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=12, show_default=True)
@click.option("--admin", "admin_name", default="admin", show_default=True)
@handle_errors
def serve(
    db_url: str | None,
    blob_dir: Path | None,
    host: str,
    port: int,
    gc_interval: str,
    max_blob_size: str,
    workers: int,
    admin_name: str,
) -> None:
    """Serve the catalog to a team over HTTP, with tokens and visibility.

    The schema is migrated on start. On a catalog without an admin, the
    admin ADMIN is created and their token printed once; with
    REFSTORE_ADMIN_TOKEN set, that token is registered for ADMIN instead.
    Several processes may serve one PostgreSQL catalog if they share the
    blob store folder. SIGTERM stops accepting and finishes requests in
    flight. A running run silent for REFSTORE_RUN_TIMEOUT_SECONDS (default
    300) reads as crashed to every client.
    """
    from refstore.server import ServerConfig
    from refstore.server import serve as run

    logging.getLogger("refstore").setLevel(logging.INFO)
    config = ServerConfig(
        db_url=_database(db_url),
        blob_dir=blob_dir or _settings().blob_dir,
        host=host,
        port=port,
        gc_interval=_interval(gc_interval),
        max_blob=parse_size(max_blob_size, "--max-blob-size"),
        workers=workers,
        admin_name=admin_name,
        admin_token=os.environ.get("REFSTORE_ADMIN_TOKEN") or None,
        run_timeout=_settings().run_timeout,
    )
    run(config)


@click.group(epilog=EXIT_CODES)
def db() -> None:
    """Manage the catalog database."""


@db.command("upgrade")
@click.option("--db", "db_url", help="Catalog database [default: REFSTORE_URL].")
@handle_errors
def db_upgrade(db_url: str | None) -> None:
    """Bring the catalog's schema to the newest revision."""
    from refstore.catalog.sql import upgrade

    click.echo(f"catalog schema is at revision {upgrade(_database(db_url))}")


@click.command(epilog=EXIT_CODES)
@click.argument("url", required=False)
@click.option("--token", help="The token [default: asked for, hidden].")
@handle_errors
def login(url: str | None, token: str | None) -> None:
    """Check a token at the service URL and save it (readable by you only).

    URL defaults to REFSTORE_URL. Set REFSTORE_URL to the same URL to use
    the service; REFSTORE_TOKEN, when set, wins over the saved token.
    """
    secret = token or click.prompt("token", hide_input=True)
    identity, saved = accounts.login(_settings(), url, secret.strip())
    click.echo(f"logged in as {identity['user']}; token saved in {saved}")


@click.command(epilog=EXIT_CODES)
@click.argument("url", required=False)
@handle_errors
def logout(url: str | None) -> None:
    """Forget the token saved for URL [default: REFSTORE_URL]."""
    forgotten = accounts.logout(_settings(), url)
    click.echo("token forgotten" if forgotten else "no token was saved")


@click.command(epilog=EXIT_CODES)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handle_errors
def whoami(as_json: bool) -> None:
    """Who the service takes you for."""
    with accounts.service_admin(_settings()) as admin:
        identity = admin.whoami()
    if as_json:
        print_json(identity)
        return
    name = identity["user"] or "anonymous"
    role = " (site admin)" if identity["admin"] else ""
    click.echo(f"{name}{role}; member of {', '.join(identity['entities']) or '-'}")


@click.group(epilog=EXIT_CODES)
def token() -> None:
    """Create, list and revoke your API tokens."""


@token.command("create")
@click.option("--label", default="cli", show_default=True)
@click.option("--user", help="Create it for this user (site admins).")
@handle_errors
def token_create(label: str, user: str | None) -> None:
    """Create a token; it is printed once and stored only hashed."""
    with accounts.service_admin(_settings()) as admin:
        answer = admin.create_token(label, user)
    click.echo(f"token {answer['id']} ({answer['label']}) of {answer['user']}:")
    click.echo(answer["token"])


@token.command("list")
@click.option("--user", help="Another user's tokens (site admins).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handle_errors
def token_list(user: str | None, as_json: bool) -> None:
    """List tokens by id and label (the tokens themselves are not kept)."""
    with accounts.service_admin(_settings()) as admin:
        rows = admin.tokens(user)
    _show(rows, as_json)


@token.command("revoke")
@click.argument("token_id", type=int)
@handle_errors
def token_revoke(token_id: int) -> None:
    """Revoke the token TOKEN_ID at once."""
    with accounts.service_admin(_settings()) as admin:
        answer = admin.revoke_token(token_id)
    click.echo(f"revoked token {answer['revoked']} ({answer['label']})")


@token.command("generate")
def token_generate() -> None:
    """Print a new random token, e.g. for REFSTORE_ADMIN_TOKEN (offline)."""
    click.echo(new_token())


@click.group(epilog=EXIT_CODES)
def user() -> None:
    """Add, list, disable and enable users (site admins)."""


@user.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Make the user a site admin.")
@handle_errors
def user_add(name: str, admin: bool) -> None:
    """Add the user NAME; their first token is printed once."""
    with accounts.service_admin(_settings()) as service:
        answer = service.create_user(name, admin=admin)
    click.echo(f"created {answer['user']}; their token, shown only now:")
    click.echo(answer["token"])


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handle_errors
def user_list(as_json: bool) -> None:
    """List every user, disabled ones too."""
    with accounts.service_admin(_settings()) as admin:
        _show(admin.users(), as_json)


@user.command("disable")
@click.argument("name")
@handle_errors
def user_disable(name: str) -> None:
    """Refuse every token of NAME at once; what they logged is kept.

    Their projects, versions, runs and team memberships stay; their tokens
    stay stored and work again after `refstore user enable NAME`. You cannot
    disable yourself.
    """
    with accounts.service_admin(_settings()) as admin:
        answer = admin.disable_user(name)
    click.echo(f"{answer['name']} is disabled since {answer['disabled_at']}")


@user.command("enable")
@click.argument("name")
@handle_errors
def user_enable(name: str) -> None:
    """Let the disabled user NAME sign in again with their tokens."""
    with accounts.service_admin(_settings()) as admin:
        answer = admin.enable_user(name)
    click.echo(f"{answer['name']} is enabled")


@click.group(epilog=EXIT_CODES)
def team() -> None:
    """Create, delete and manage teams (a team's projects are TEAM/...)."""


@team.command("create")
@click.argument("name")
@handle_errors
def team_create(name: str) -> None:
    """Create the team NAME; you become its admin."""
    with accounts.service_admin(_settings()) as admin:
        _members(admin.create_team(name))


@team.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handle_errors
def team_show(name: str, as_json: bool) -> None:
    """List the members of the team NAME."""
    with accounts.service_admin(_settings()) as admin:
        answer = admin.team(name)
    if as_json:
        print_json(answer)
    else:
        _members(answer)


@team.command("delete")
@click.argument("name")
@handle_errors
def team_delete(name: str) -> None:
    """Delete the team NAME and its memberships (it must own no projects)."""
    with accounts.service_admin(_settings()) as admin:
        answer = admin.delete_team(name)
    removed = answer["removed_members"]
    click.echo(f"deleted team {answer['team']} ({removed} memberships removed)")


@team.command("add-member")
@click.argument("name")
@click.argument("member")
@click.option("--role", type=click.Choice(["member", "admin"]), default="member")
@handle_errors
def team_add_member(name: str, member: str, role: str) -> None:
    """Add MEMBER to the team NAME (or change their role)."""
    with accounts.service_admin(_settings()) as admin:
        _members(admin.set_member(name, member, role))


@team.command("remove-member")
@click.argument("name")
@click.argument("member")
@handle_errors
def team_remove_member(name: str, member: str) -> None:
    """Remove MEMBER from the team NAME."""
    with accounts.service_admin(_settings()) as admin:
        _members(admin.remove_member(name, member))


@click.group(epilog=EXIT_CODES)
def project() -> None:
    """Delete, rename or share projects (visibility: at a service)."""


project.add_command(cli_projects.project_delete)
project.add_command(cli_projects.project_rename)


@project.command("visibility")
@click.argument("path")
@click.argument("visibility", type=click.Choice(VISIBILITIES))
@handle_errors
def project_visibility(path: str, visibility: str) -> None:
    """Make ENTITY/PROJECT private, public (anyone reads) or open (anyone writes)."""
    answer = accounts.set_visibility(_settings(), path, visibility)
    click.echo(f"{answer['project']} is now {answer['visibility']}")


def _show(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print_json(rows)
    else:
        print_table(rows)


def _members(answer: dict[str, Any]) -> None:
    click.echo(f"team {answer['team']}:")
    print_table(answer["members"])


COMMANDS: list[click.Command] = [
    serve,
    db,
    login,
    logout,
    whoami,
    token,
    user,
    team,
    project,
]
