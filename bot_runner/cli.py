"""The ``colorchanger-runner`` command: manage users in the database and run their bots."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import aiohttp
import click
from prometheus_client import CollectorRegistry

from colorchanger_ext.colors import MAX_PALETTE, PALETTE_ORDERS, READABILITIES, PaletteError, parse_palette
from colorchanger_ext.settings import COLOR_MODES, HEX_POLICIES
from colorchanger_ext.store import NoPaletteError, StoreError, UserState
from colorchanger_ext.twitchio_compat import fix_reconnect_tracking, twitchio_endpoints

from .accounts import Account, Accounts
from .config import Config, ConfigError, find_config, load_config, search_locations
from .health import DEFAULT_HOST as DEFAULT_HEALTH_HOST
from .health import HealthPortError, operations
from .login import (
    ACCESS_TOKEN_ENV,
    REFRESH_TOKEN_ENV,
    TOKEN_SOURCES,
    InvalidToken,
    LoginError,
    Tokens,
    TwitchAuth,
    check_account,
    normalize_channel,
    normalize_channels,
    read_token_pair,
)
from .logs import configure_logging
from .metrics import Metrics
from .runlock import RunLockError, hold_run_lock
from .status import query_health, render, runner_line
from .supervisor import Supervisor

P = ParamSpec("P")
R = TypeVar("R")


class BadConfig(click.ClickException):
    """A configuration problem: exit status 2, like a usage error, before anything is touched."""

    exit_code = 2


@dataclass
class Runtime:
    """What every command shares: where the config is, loaded once on first use."""

    explicit_config: Path | None
    _config: Config | None = field(default=None, init=False)

    @property
    def config(self) -> Config:
        if self._config is None:
            try:
                self._config = load_config(find_config(self.explicit_config))
            except ConfigError as error:
                raise BadConfig(str(error)) from None
        return self._config

    def client_id(self) -> str:
        try:
            return self.config.require_client_id()
        except ConfigError as error:
            raise BadConfig(str(error)) from None

    @contextlib.asynccontextmanager
    async def accounts(self) -> AsyncIterator[Accounts]:
        database = self.config.database
        try:
            database.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as error:  # a file in the way, no permission: one line, not a traceback
            raise StoreError(
                f"cannot create the database directory {database.parent}: {error.strerror or error}"
            ) from None
        accounts = await Accounts.open(database)
        try:
            yield accounts
        finally:
            await accounts.close()

    @contextlib.asynccontextmanager
    async def auth(self) -> AsyncIterator[TwitchAuth]:
        config = self.config
        async with aiohttp.ClientSession() as session:
            yield TwitchAuth(
                session,
                client_id=self.client_id(),
                client_secret=config.client_secret,
                oauth_url=config.endpoints.oauth,
                helix_url=config.endpoints.helix,
            )


pass_runtime = click.make_pass_decorator(Runtime)


def run_async(command: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, R]:
    """Run a coroutine command; database and login failures become one clear line and exit 1."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return asyncio.run(command(*args, **kwargs))
        except (StoreError, LoginError) as error:
            raise click.ClickException(str(error)) from None

    return wrapper


def stop_signals() -> tuple[signal.Signals, ...]:
    """What a user or a service manager sends to stop us: Ctrl-C, SIGTERM, and Ctrl-Break on Windows."""
    extra = getattr(signal, "SIGBREAK", None)  # Windows only
    return (signal.SIGINT, signal.SIGTERM, *([extra] if extra is not None else []))


def stop_on_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Set stop on a stop signal, with the loop's handlers where they exist (POSIX) and plain
    signal handlers elsewhere (Windows' loops raise NotImplementedError for add_signal_handler)."""
    for signum in stop_signals():
        try:
            loop.add_signal_handler(signum, stop.set)
        except NotImplementedError:
            # runs in the main thread between bytecodes: only hand the event over to the loop
            signal.signal(signum, lambda _signum, _frame: loop.call_soon_threadsafe(stop.set))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="YAML config file. Default: $COLORCHANGER_CONFIG, ./colorchanger.yaml, then the user config dir.",
)
@click.version_option(package_name="twitchio-colorchanger")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None) -> None:
    """Change your Twitch chat colour after every message you send.

    Add yourself with `users add LOGIN`, then start with `run`.
    """
    ctx.obj = Runtime(config_path)


@main.command()
@click.option(
    "--health-port",
    type=click.IntRange(0, 65535),
    help="Serve GET /healthz and /metrics on this port (0: any free one). Default: health_port.",
)
@click.option(
    "--health-host",
    default=DEFAULT_HEALTH_HOST,
    show_default=True,
    help="Address the health port listens on (e.g. 0.0.0.0 in a container).",
)
@pass_runtime
def run(runtime: Runtime, health_port: int | None, health_host: str) -> None:
    """Run one bot per enabled user until interrupted (Ctrl-C, SIGTERM; Ctrl-Break on Windows).

    One run per database: a second one exits at once, naming the process that runs. The other
    commands keep working while it runs; they are how users are managed live.
    """
    config = runtime.config
    if health_port is None:
        health_port = config.health_port
    client_id = runtime.client_id()
    redactor = configure_logging(
        level=config.logging.level,
        format=config.logging.format,
        file=config.logging.file,
        max_bytes=config.logging.max_bytes,
        backup_count=config.logging.backup_count,
        secrets=[config.client_secret] if config.client_secret else [],
    )

    async def serve() -> None:
        stop = asyncio.Event()
        stop_on_signals(asyncio.get_running_loop(), stop)
        fix_reconnect_tracking()
        endpoints = config.endpoints
        with twitchio_endpoints(endpoints.helix, endpoints.oauth, endpoints.eventsub):
            async with runtime.accounts() as accounts:
                metrics = Metrics(CollectorRegistry())  # the runner's own registry, never the global one
                supervisor = Supervisor(
                    accounts,
                    client_id=client_id,
                    client_secret=config.client_secret,
                    colors=config.colors,
                    redactor=redactor,
                    observer=metrics,
                    on_status=metrics.status_changed,
                    restore_colors=config.restore_colour_on_exit,
                )
                try:
                    async with operations(
                        accounts,
                        supervisor,
                        metrics,
                        port=health_port,
                        host=health_host,
                        redact=redactor.redact,
                    ):
                        await supervisor.run(stop)
                except HealthPortError as error:
                    raise click.ClickException(str(error)) from None

    try:
        with hold_run_lock(config.database):
            run_async(serve)()
    except RunLockError as error:
        raise click.ClickException(str(error)) from None


@main.command()
@click.option("--fast", is_flag=True, help="No pauses between lines (for scripts and tests).")
@click.option(
    "--color/--no-color",
    default=None,
    help="Force colour swatches on or off. Default: on for a terminal, unless NO_COLOR is set.",
)
@click.option("--verbose", "-v", is_flag=True, help="Show the runner's INFO log on stderr as well.")
def demo(fast: bool, color: bool | None, verbose: bool) -> None:
    """Watch it work on a built-in simulated Twitch: no account, network or config needed.

    Runs the real runner (database, bots, twitchio) for two simulated users and plays a short
    scripted chat; exits 1 if anything did not behave, so it also checks an installation.
    """
    from .demo import run_demo  # imports the simulated Twitch only when asked for

    run_demo(fast=fast, color=color, verbose=verbose)


@main.group()
def users() -> None:
    """Add, list, change and remove the Twitch accounts the runner changes colours for."""


@users.command("add")
@click.argument("login")
@click.option(
    "--channel",
    "-c",
    "channels",
    multiple=True,
    help="A channel to read chat in (repeatable). Default: your own.",
)
@click.option(
    "--tokens-from",
    metavar="SOURCE",
    help=f"Import an existing token pair instead of logging in, read from {TOKEN_SOURCES} "
    "(two lines: access token, then refresh token).",
)
@click.option("--access-token", hidden=True, help="Refused: tokens on the command line are visible to all.")
@click.option("--refresh-token", hidden=True, help="Refused: tokens on the command line are visible to all.")
@pass_runtime
@run_async
async def users_add(
    runtime: Runtime,
    login: str,
    channels: tuple[str, ...],
    tokens_from: str | None,
    access_token: str | None,
    refresh_token: str | None,
) -> None:
    """Log LOGIN in with Twitch's device code flow (or import tokens), and store it.

    Adding a user that exists logs it in again: the way to recover a revoked account.
    """
    login = normalize_channel(login)
    if access_token or refresh_token:
        # any local user can read another process's command line (ps, /proc, Task Manager)
        raise click.UsageError(
            "tokens are not taken on the command line, where every local user can read them: "
            f"use --tokens-from env (with {ACCESS_TOKEN_ENV} and {REFRESH_TOKEN_ENV}), "
            "--tokens-from stdin, or --tokens-from FILE"
        )
    if tokens_from is not None:
        access_token, refresh_token = read_token_pair(tokens_from, environ=os.environ, stdin=sys.stdin)
    wanted = normalize_channels(channels) if channels else None
    async with runtime.auth() as auth:
        if access_token and refresh_token:
            tokens = await auth.import_tokens(access_token, refresh_token)
        else:
            tokens = await device_login(auth, login)
        check_account(tokens, login)
        async with runtime.accounts() as accounts:
            existing = await accounts.get(tokens.user_id)
            if wanted is None:
                wanted = [c.login for c in existing.channels] if existing and existing.channels else [login]
            resolved = await auth.resolve_channels(tokens, wanted)
            account = await accounts.add_user(
                user_id=tokens.user_id,
                login=tokens.login,
                access_token=tokens.access_token,
                refresh_token=tokens.refresh_token,
                scopes=tokens.scopes,
                expires_at=tokens.expires_at,
                channels=[(channel.id, channel.login) for channel in resolved],
                mode=runtime.config.colors.mode,
                hex_policy=runtime.config.colors.hex_policy,
                readability=runtime.config.colors.readability,
                rainbow_step=runtime.config.colors.rainbow_step,
            )
    verb = "Logged in again" if existing else "Added"
    click.echo(f"{verb}: {account.login} (id {account.user_id}), reading chat in {channel_list(account)}.")
    click.echo("A running `colorchanger-runner run` picks this up by itself; otherwise start one.")


async def device_login(auth: TwitchAuth, login: str) -> Tokens:
    """Show the code and URL, then wait for approval with a visible countdown."""
    code = await auth.start_device_login()
    click.echo(f"To let colorchanger change {login}'s colour, open this page while logged in as {login}:\n")
    click.secho(f"    {code.verification_uri}", bold=True)
    click.echo("\nand enter the code:\n")
    click.secho(f"    {code.user_code}\n", bold=True)
    interactive = sys.stderr.isatty()
    last_shown = [float("inf")]

    def tick(seconds_left: float) -> None:
        minutes, seconds = divmod(max(0, int(seconds_left)), 60)
        text = f"waiting for approval... {minutes}:{seconds:02d} left"
        if interactive:
            click.echo(f"\r{text}  ", nl=False, err=True)
        elif last_shown[0] - seconds_left >= 60:
            last_shown[0] = seconds_left
            click.echo(text, err=True)

    try:
        return await auth.wait_for_device_login(code, on_tick=tick)
    finally:
        if interactive:
            click.echo(err=True)


def channel_list(account: Account) -> str:
    return (
        ", ".join(f"#{c.login}" + (" (banned)" if c.banned_at else "") for c in account.channels)
        or "no channels"
    )


def expiry(account: Account) -> str:
    if account.tokens is None or account.tokens.expires_at is None:
        return "-"
    left = account.tokens.expires_at - time.time()
    return "expired" if left <= 0 else f"in {int(left // 3600)}h{int(left % 3600 // 60):02d}m"


def status(account: Account) -> str:
    if account.tokens is None or account.tokens.status != "ok":
        return "needs-login"
    return "ok" if account.enabled else "disabled"


@users.command("list")
@pass_runtime
@run_async
async def users_list(runtime: Runtime) -> None:
    """Show every user: channels, colour settings, token expiry, last colour and status."""
    async with runtime.accounts() as accounts:
        rows = await accounts.list()
    if not rows:
        click.echo("No users yet. Add one with: colorchanger-runner users add LOGIN")
        return
    table = [
        (
            "LOGIN",
            "ID",
            "ENABLED",
            "CHANGES",
            "CHANNELS",
            "MODE",
            "HEX",
            "READABILITY",
            "TOKEN EXPIRES",
            "LAST COLOUR",
            "STATUS",
        )
    ]
    for account in rows:
        state = account.state
        table.append(
            (
                account.login,
                account.user_id,
                "yes" if account.enabled else "no",
                "on" if state.enabled else "off (ccd)",
                channel_list(account),
                mode_text(state),
                state.hex_policy,
                state.readability,
                expiry(account),
                state.last_color or "-",
                status(account),
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


async def require_account(accounts: Accounts, login: str) -> Account:
    account = await accounts.get(normalize_channel(login))
    if account is None:
        raise click.ClickException(f"no user {login!r}: see `colorchanger-runner users list`")
    return account


@users.command("remove")
@click.argument("login")
@pass_runtime
@run_async
async def users_remove(runtime: Runtime, login: str) -> None:
    """Forget LOGIN: its tokens (revoked at Twitch too), channels and colour state."""
    async with runtime.accounts() as accounts:
        account = await require_account(accounts, login)
        await accounts.remove(account.user_id)
    click.echo(f"Removed {account.login}.")
    if account.tokens is None:
        return
    try:
        async with runtime.auth() as auth:  # so no live credential of the account is left behind
            await auth.revoke(account.tokens.refresh_token)
            await auth.revoke(account.tokens.access_token)
    except LoginError as error:
        click.echo(
            f"Warning: could not revoke {account.login}'s tokens at Twitch ({error}); "
            "disconnect the app at https://www.twitch.tv/settings/connections to be sure.",
            err=True,
        )


def _toggle(enabled: bool) -> Callable[[Runtime, str], Awaitable[None]]:
    async def toggle(runtime: Runtime, login: str) -> None:
        async with runtime.accounts() as accounts:
            account = await require_account(accounts, login)
            account = await accounts.set_enabled(account.user_id, enabled)
        click.echo(f"{account.login}: colour changes {'enabled' if enabled else 'disabled'}.")

    return toggle


@users.command("enable")
@click.argument("login")
@pass_runtime
@run_async
async def users_enable(runtime: Runtime, login: str) -> None:
    """Start changing LOGIN's colour again (a running runner starts its bot)."""
    await _toggle(True)(runtime, login)


@users.command("disable")
@click.argument("login")
@pass_runtime
@run_async
async def users_disable(runtime: Runtime, login: str) -> None:
    """Stop changing LOGIN's colour (a running runner stops its bot); keeps everything stored."""
    await _toggle(False)(runtime, login)


@users.group("channels")
def users_channels() -> None:
    """Change which channels' chat a user's bot reads."""


@users_channels.command("add")
@click.argument("login")
@click.argument("names", nargs=-1, required=True)
@pass_runtime
@run_async
async def channels_add(runtime: Runtime, login: str, names: tuple[str, ...]) -> None:
    """Read chat in more channels (each must exist on Twitch)."""
    wanted = normalize_channels(names)
    async with runtime.accounts() as accounts:
        account = await require_account(accounts, login)
        async with runtime.auth() as auth:
            resolved = await resolve_with_stored_tokens(auth, accounts, account, wanted)
        account = await accounts.add_channels(account.user_id, [(c.id, c.login) for c in resolved])
    click.echo(f"{account.login}: reading chat in {channel_list(account)}.")


async def resolve_with_stored_tokens(
    auth: TwitchAuth, accounts: Accounts, account: Account, names: list[str]
) -> list[Any]:
    """Look channels up with the user's stored token, refreshing (and saving) it once if expired."""
    stored = account.tokens
    if stored is None or stored.status != "ok":
        raise click.ClickException(
            f"{account.login} needs login first: colorchanger-runner users add {account.login}"
        )
    tokens = Tokens(
        user_id=account.user_id,
        login=account.login,
        access_token=stored.access_token,
        refresh_token=stored.refresh_token,
        scopes=stored.scopes,
        expires_at=stored.expires_at or 0.0,
    )
    try:
        return await auth.resolve_channels(tokens, names)
    except InvalidToken:
        try:
            access, refresh = await auth.refresh(stored.refresh_token)
        except LoginError:
            await accounts.mark_needs_login(account.user_id, "Twitch rejected the refresh token")
            raise
        # Saved before any use: the old refresh token is spent now. Its expiry is learned after.
        await accounts.save_tokens(account.user_id, access, refresh, expires_at=None)
        with contextlib.suppress(LoginError):
            expires_at = time.time() + (await auth.validate(access)).expires_in
            await accounts.save_tokens(account.user_id, access, refresh, expires_at=expires_at)
        fresh = Tokens(tokens.user_id, tokens.login, access, refresh, tokens.scopes, tokens.expires_at)
        return await auth.resolve_channels(fresh, names)


@users_channels.command("remove")
@click.argument("login")
@click.argument("names", nargs=-1, required=True)
@pass_runtime
@run_async
async def channels_remove(runtime: Runtime, login: str, names: tuple[str, ...]) -> None:
    """Stop reading chat in these channels."""
    wanted = normalize_channels(names)
    async with runtime.accounts() as accounts:
        account = await require_account(accounts, login)
        account = await accounts.remove_channels(account.user_id, wanted)
    click.echo(f"{account.login}: reading chat in {channel_list(account)}.")


def mode_text(state: UserState) -> str:
    """The mode with what it needs to be understood: the rainbow's step, the palette's size and order."""
    if state.mode == "rainbow":
        return f"rainbow (step {state.rainbow_step})"
    if state.mode == "palette":
        size = len(state.palette)
        return f"palette ({size} colour{'' if size == 1 else 's'}, {state.palette_order})"
    return state.mode


def parse_palette_option(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[str, ...] | None:
    """--palette "red,#9146FF,coral" as canonical colours; a bad entry is named by its position."""
    if value is None:
        return None
    try:
        return parse_palette(value)
    except PaletteError as error:
        raise click.BadParameter(str(error), ctx=ctx, param=param) from None


@users.command("set")
@click.argument("login")
@click.option(
    "--mode",
    type=click.Choice(COLOR_MODES),
    help="preset: named colours; hex: any readable colour; rainbow: round the colour wheel; "
    "palette: your own colours (needs --palette).",
)
@click.option(
    "--hex", "hex_policy", type=click.Choice(HEX_POLICIES), help="Whether to use hex colours (auto learns)."
)
@click.option(
    "--readability",
    type=click.Choice(READABILITIES),
    help="The chat theme hex and rainbow colours must read well on (off: no bound).",
)
@click.option(
    "--rainbow-step", type=click.IntRange(1, 359), help="Degrees of hue between rainbow colours (1-359)."
)
@click.option(
    "--palette",
    callback=parse_palette_option,
    metavar="COLOURS",
    help=f'Your own colours, comma separated: "red,#9146FF,blue violet" (at most {MAX_PALETTE}; '
    '"" empties it).',
)
@click.option(
    "--palette-order",
    type=click.Choice(PALETTE_ORDERS),
    help="cycle: in order; shuffle: random order, each colour once per round.",
)
@pass_runtime
@run_async
async def users_set(
    runtime: Runtime,
    login: str,
    mode: str | None,
    hex_policy: str | None,
    readability: str | None,
    rainbow_step: int | None,
    palette: tuple[str, ...] | None,
    palette_order: str | None,
) -> None:
    """Change LOGIN's colour settings."""
    given = (mode, hex_policy, readability, rainbow_step, palette, palette_order)
    if all(value is None for value in given):
        raise click.UsageError(
            "nothing to set: give --mode, --hex, --readability, --rainbow-step, --palette or --palette-order"
        )
    async with runtime.accounts() as accounts:
        account = await require_account(accounts, login)
        try:
            account = await accounts.set_colors(
                account.user_id,
                mode=mode,
                hex_policy=hex_policy,
                readability=readability,
                rainbow_step=rainbow_step,
                palette=palette,
                palette_order=palette_order,
            )
        except NoPaletteError:
            raise click.ClickException(
                f"{account.login} would be in palette mode without a palette: "
                f'give --palette, like --palette "red,#9146FF,coral", or another --mode'
            ) from None
    state = account.state
    palette_text = f"; palette {', '.join(state.palette)}" if state.palette else ""
    click.echo(
        f"{account.login}: mode {mode_text(state)}, hex {state.hex_policy}, "
        f"readability {state.readability}{palette_text}."
    )


@main.command("status")
@click.option(
    "--health-port",
    type=click.IntRange(1, 65535),
    help="Ask the runner on this port for its live state. Default: health_port from the config.",
)
@click.option(
    "--health-host",
    default=DEFAULT_HEALTH_HOST,
    show_default=True,
    help="Address the runner's health port listens on (its run --health-host; 0.0.0.0 means this host).",
)
@pass_runtime
@run_async
async def show_status(runtime: Runtime, health_port: int | None, health_host: str) -> None:
    """Each user's health: status, last colour and change, errors; live state from a running runner."""
    async with runtime.accounts() as accounts:
        rows = await accounts.list()
    live = await query_health(
        health_port if health_port is not None else runtime.config.health_port, host=health_host
    )
    if not rows:
        click.echo("No users yet. Add one with: colorchanger-runner users add LOGIN")
        click.echo(runner_line(live))
        return
    for line in render(rows, live):
        click.echo(line)


@main.command("config")
@pass_runtime
def show_config(runtime: Runtime) -> None:
    """Say which config file is used and where the database is."""
    config = runtime.config
    click.echo(f"config file: {config.source or 'none found'}")
    if config.source is None:
        click.echo("searched: " + ", ".join(str(p) for p in search_locations()))
    click.echo(f"database:    {config.database}")
    click.echo(f"client id:   {'set' if config.client_id else 'missing'}")
