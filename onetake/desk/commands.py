"""The desk's commands: ``onetake serve`` and ``onetake users``, added to the ``onetake`` group by cli.py, which
hands in how to make the farm (so that the desk never imports the workers)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

import click

from ..pipeline.config import (
    ROLES,
    FarmConfig,
    WatchConfig,
    field_help,
    load_config,
    load_serve_config,
    load_watch_config,
    serve_help,
)
from ..pipeline.errors import ConfigError


def _ledger_path(config: str | None, out: str | None, ledger: str | None) -> str:
    return load_config(config).merged(out=out, ledger=ledger).ledger_path()


def add_desk_commands(cli: click.Group, farm_for: Callable[[FarmConfig], Any],
                      catalog_for: Callable[[str | None], Any]) -> None:
    """Add ``serve`` and ``users`` to ``cli``; ``farm_for(settings)`` makes the farm the watcher runs jobs on."""

    @cli.command("serve")
    @click.option("--config", "config", type=click.Path(dir_okay=False),
                  help="a farm config TOML file; its [[inbox]] tables are watched, its [serve] table sets the desk")
    @click.option("--bind", help=serve_help("bind"))
    @click.option("--ledger", type=click.Path(dir_okay=False),
                  help="serve this existing ledger (of a watcher that runs elsewhere); " + field_help("ledger"))
    @click.option("--out", type=click.Path(file_okay=False),
                  help="the deliveries folder whose default ledger (OUT/.onetake/jobs.sqlite) to serve")
    @click.option("--no-watch", is_flag=True, help="serve the desk only, even where the config has inboxes")
    def serve_command(config: str | None, bind: str | None, ledger: str | None, out: str | None,
                      no_watch: bool) -> None:
        """Run the dispatch desk: the board, asset pages, actions and uploads in a browser, and the watcher on
        the config's inboxes, on one ledger. Prints the desk's address; stops on SIGTERM or Ctrl-C."""
        from dataclasses import replace

        from .app import create_app
        from .service import bind_socket, run_desk

        farm, watch, tables = load_watch_config(config) if config else (FarmConfig(), WatchConfig(), [])
        serve = load_serve_config(config)
        if bind is not None:
            serve = replace(serve, bind=bind)
            load_serve_config_check(serve)
        farm = farm.merged(out=out, ledger=ledger)
        path = farm.ledger_path()
        if ledger is not None and not os.path.isfile(ledger):
            raise ConfigError(f"{ledger}: no job ledger there; give the one `onetake watch` or `run` uses")
        inboxes = [] if no_watch else tables
        upload_inbox = serve.upload_inbox or (tables[0].path if tables else "")
        if upload_inbox and not os.path.isdir(upload_inbox):
            raise ConfigError(f"{upload_inbox}: the upload inbox is not a folder; create it or fix "
                              f"[serve] upload_inbox")

        def log(line: str) -> None:
            click.echo(f"{time.strftime('%H:%M:%S')} {line}", err=True)

        from ..pipeline.ledger import Ledger

        with Ledger(path) as opened:
            if not opened.users():
                log(f"no users yet: add one with `onetake users add NAME --role operator --ledger {path}`")
        sock = bind_socket(serve.bind)
        catalog = catalog_for(farm.profiles_dir) if inboxes else None
        chosen = farm_for(farm) if inboxes else None
        # what the upload inbox waits for beside a file (its own [[inbox]] require, else [watch]'s)
        require = next((t.require for t in tables if t.require and os.path.abspath(t.path) ==
                        os.path.abspath(upload_inbox)), "") or watch.require
        sys.exit(run_desk(lambda: create_app(path, serve, upload_inbox or None, require), sock, serve, farm, watch,
                          inboxes,
                          catalog, chosen, log))

    ledger_options = [
        click.option("--ledger", type=click.Path(dir_okay=False), help=field_help("ledger")),
        click.option("--config", "config", type=click.Path(dir_okay=False), help="a farm config TOML file"),
        click.option("--out", type=click.Path(file_okay=False), help="the default ledger is OUT/.onetake/jobs.sqlite"),
    ]

    def with_ledger(f: Any) -> Any:
        for decorator in reversed(ledger_options):
            f = decorator(f)
        return f

    def read_password(from_stdin: bool) -> str:
        if from_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise ConfigError("--password-stdin: standard input gave no password; pipe one line into it")
            return password
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)

    @cli.group("users")
    def users_group() -> None:
        """Add, list, change and remove the people who may use the desk."""

    @users_group.command("add")
    @click.argument("name")
    @click.option("--role", required=True, type=click.Choice(ROLES),
                  help="viewer: sees; editor: also uploads, retries, moves to urgent; operator: also cancels, "
                       "delivers despite QC, manages users")
    @click.option("--password-stdin", is_flag=True, help="read the password from standard input (for scripts)")
    @click.option("--upload-limit-mb", type=click.IntRange(0, 1024 * 1024), default=0,
                  help="the largest upload of this user in MiB; 0: [serve] upload_limit_mb")
    @with_ledger
    def users_add(name: str, role: str, password_stdin: bool, upload_limit_mb: int, ledger: str | None,
                  config: str | None, out: str | None) -> None:
        """Add a user; the password is asked for (twice), or read from standard input."""
        from ..pipeline.ledger import Ledger
        from .auth import check_user_name, hash_password

        check_user_name(name)
        hashed = hash_password(read_password(password_stdin))
        with Ledger(_ledger_path(config, out, ledger)) as opened:
            opened.add_user(name, role, hashed, upload_limit_mb * 2**20)
            opened.audit(os.environ.get("USER", "") or "cli", "user", detail=f"added {name} as {role} (command line)")
        click.echo(f"user {name} added as {role}")

    @users_group.command("list")
    @with_ledger
    def users_list(ledger: str | None, config: str | None, out: str | None) -> None:
        """One line per user: name, role, upload limit."""
        from ..pipeline.ledger import Ledger

        with Ledger(_ledger_path(config, out, ledger)) as opened:
            for user in opened.users():
                limit = f"{user['upload_limit'] // 2**20} MiB" if user["upload_limit"] else "default"
                click.echo(f"{user['name']:<24} {user['role']:<9} upload limit {limit}")

    @users_group.command("set")
    @click.argument("name")
    @click.option("--role", type=click.Choice(ROLES), help="the user's new role")
    @click.option("--password", "new_password", is_flag=True, help="set a new password (asked, or from stdin)")
    @click.option("--password-stdin", is_flag=True, help="with --password: read it from standard input")
    @click.option("--upload-limit-mb", type=click.IntRange(0, 1024 * 1024), help="0: [serve] upload_limit_mb")
    @with_ledger
    def users_set(name: str, role: str | None, new_password: bool, password_stdin: bool,
                  upload_limit_mb: int | None, ledger: str | None, config: str | None, out: str | None) -> None:
        """Change a user's role, password or upload limit (a new role or password signs them out)."""
        from ..pipeline.ledger import Ledger
        from .auth import hash_password

        hashed = hash_password(read_password(password_stdin)) if new_password or password_stdin else None
        with Ledger(_ledger_path(config, out, ledger)) as opened:
            opened.set_user(name, role=role, password_hash=hashed,
                            upload_limit=None if upload_limit_mb is None else upload_limit_mb * 2**20)
        click.echo(f"user {name} changed")

    @users_group.command("remove")
    @click.argument("name")
    @with_ledger
    def users_remove(name: str, ledger: str | None, config: str | None, out: str | None) -> None:
        """Remove a user; their sessions end at once."""
        from ..pipeline.ledger import Ledger

        with Ledger(_ledger_path(config, out, ledger)) as opened:
            opened.remove_user(name)
        click.echo(f"user {name} removed")


def load_serve_config_check(serve: Any) -> None:
    """--bind checked as the [serve] bind key is."""
    import re
    from dataclasses import fields

    from ..pipeline.config import ServeConfig

    pattern = next(f.metadata["pattern"] for f in fields(ServeConfig) if f.name == "bind")
    if not re.fullmatch(pattern, serve.bind):
        raise ConfigError(f"--bind {serve.bind}: give HOST:PORT, e.g. 127.0.0.1:8800")
