"""colorchanger-runner in-process: click's CliRunner against the fake Twitch, one command at a time.

The CLI calls ``asyncio.run`` itself while the fake lives in the test's event loop, so every command
runs in a worker thread (``asyncio.to_thread``) and the fake keeps answering meanwhile. The
subprocess counterpart, with a real ``run``, is tests/test_runner_e2e.py.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.metadata
import os
import re
import shlex
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from bot_runner import config as config_module
from bot_runner.accounts import Accounts
from bot_runner.cli import main
from colorchanger_ext.testing import FakeTwitch, FakeUser

from .conftest import import_args, tokens_of, write_runner_config

README = Path(__file__).resolve().parent.parent / "README.md"
NO_USERS = "No users yet. Add one with: colorchanger-runner users add LOGIN"


@dataclass
class Cli:
    """Invokes ``main`` the way a shell would, with ``--config`` when there is a file to name."""

    config: Path | None
    cwd: Path

    async def invoke(self, *args: str) -> Result:
        argv = [*(["--config", str(self.config)] if self.config else []), *args]
        # catch_exceptions=False: a traceback fails the test instead of hiding in result.exception.
        invoke = functools.partial(CliRunner().invoke, main, argv, catch_exceptions=False)
        return await asyncio.to_thread(invoke)

    async def ok(self, *args: str) -> Result:
        result = await self.invoke(*args)
        assert result.exit_code == 0, f"{args} exited {result.exit_code}:\n{result.output}"
        assert not result.stderr, result.stderr
        return result

    async def fails(self, exit_code: int, *args: str) -> Result:
        """The command fails with this status and says why on stderr (with nothing on stdout)."""
        result = await self.invoke(*args)
        assert result.exit_code == exit_code, f"{args} exited {result.exit_code}:\n{result.output}"
        assert result.stderr.startswith(("Error: ", "Usage: ")), result.output
        assert not result.stdout, result.stdout
        return result

    async def import_user(self, user: FakeUser, *channels: str) -> Result:
        return await self.ok(*import_args(user, *channels))

    async def rows(self) -> dict[str, dict[str, str]]:
        """``users list`` as {login: {column: cell}}."""
        return table((await self.ok("users", "list")).stdout)


def table(output: str) -> dict[str, dict[str, str]]:
    """Parse ``users list``: cells are separated by at least two spaces and never contain two."""
    lines = [line for line in output.splitlines() if line.strip()]
    header = re.split(r" {2,}", lines[0])
    assert header[0] == "LOGIN", output
    rows: dict[str, dict[str, str]] = {}
    for line in lines[1:]:
        cells = re.split(r" {2,}", line)
        assert len(cells) == len(header), f"{line!r} does not fit {header}"
        rows[cells[0]] = dict(zip(header, cells, strict=True))
    return rows


def write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def assert_no_secrets(results: list[Result], secrets: list[str]) -> None:
    for result in results:
        for secret in secrets:
            assert secret not in result.output, "a token was printed"


@pytest.fixture(autouse=True)
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No COLORCHANGER_* from the outside, an empty working directory, and a home inside tmp_path."""
    for name in [name for name in os.environ if name.startswith("COLORCHANGER_")]:
        monkeypatch.delenv(name)
    home, xdg, cwd = tmp_path / "home", tmp_path / "xdg", tmp_path / "cwd"
    for directory in (home, xdg, cwd):
        directory.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    monkeypatch.chdir(cwd)
    assert Path(click.get_app_dir("colorchanger")) == xdg / "colorchanger"  # the real home is never read
    return cwd


@pytest.fixture
def config_file(twitch: FakeTwitch, tmp_path: Path) -> Path:
    """A config file in a directory of its own, aimed at the fake; the database goes next to it."""
    (tmp_path / "conf").mkdir()
    return write_runner_config(tmp_path / "conf" / "runner.yaml", twitch)


@pytest.fixture
def cli(config_file: Path, environment: Path) -> Cli:
    return Cli(config_file, environment)


@pytest.fixture
def database(config_file: Path) -> Path:
    return config_file.parent / "state" / "colorchanger.sqlite3"


async def device_add(twitch: FakeTwitch, cli: Cli, approver: FakeUser, *args: str) -> tuple[Result, str]:
    """``users add ARGS`` through the device code flow, approved on the fake by ``approver``."""
    twitch.device_interval = 1
    adding = asyncio.create_task(cli.invoke("users", "add", *args))
    try:
        code = await twitch.wait_for_device_code(timeout=10)
        twitch.approve_device(code.user_code, approver)
        async with asyncio.timeout(10):
            return await asyncio.shield(adding), code.user_code
    finally:
        if not adding.done():  # end the CLI's polling so its thread does not outlive the test
            for pending in twitch.oauth.devices.values():
                if pending.status == "pending":
                    pending.status = "denied"
            await asyncio.wait([adding], timeout=10)


# --- users add -----------------------------------------------------------------------------------------


async def test_users_add_imports_tokens_and_users_list_shows_the_row(twitch: FakeTwitch, cli: Cli) -> None:
    alice = twitch.add_user("alice")
    partner = twitch.add_user("partner")
    added = await cli.import_user(alice, "#Partner", "Alice")
    assert added.stdout.startswith(f"Added: alice (id {alice.id}), reading chat in #partner, #alice.\n")
    listing = await cli.ok("users", "list")
    row = table(listing.stdout)["alice"]
    expires = row.pop("TOKEN EXPIRES")
    assert re.fullmatch(r"in (3h59m|4h00m)", expires), expires
    assert row == {
        "LOGIN": "alice",
        "ID": alice.id,
        "ENABLED": "yes",
        "CHANGES": "on",
        "CHANNELS": "#partner, #alice",
        "MODE": "preset",
        "HEX": "auto",
        "READABILITY": "dark",
        "LAST COLOUR": "-",
        "STATUS": "ok",
    }
    lookups = [r for r in twitch.requests if r.path == "/helix/users"]
    assert [r.user_id for r in lookups] == [alice.id]  # resolved with the imported token
    assert sorted(lookups[0].query["login"]) == ["alice", "partner"]
    assert partner.id not in listing.stdout  # ids of channels are stored, not shown
    assert_no_secrets([added, listing], tokens_of(alice))


async def test_users_add_with_an_unknown_channel_stores_nothing(twitch: FakeTwitch, cli: Cli) -> None:
    alice = twitch.add_user("alice")
    failed = await cli.fails(
        1,
        "users",
        "add",
        *import_args(alice, "alice", "#Ghost")[2:],
    )
    assert "no Twitch channel named 'ghost'" in failed.stderr
    listing = await cli.ok("users", "list")
    assert listing.stdout.strip() == NO_USERS
    assert_no_secrets([failed, listing], tokens_of(alice))


@pytest.mark.parametrize("given", ["--access-token", "--refresh-token"])
async def test_users_add_refuses_tokens_on_the_command_line(twitch: FakeTwitch, cli: Cli, given: str) -> None:
    alice = twitch.add_user("alice")
    token = alice.access_token if given == "--access-token" else alice.refresh_token
    failed = await cli.fails(2, "users", "add", "alice", given, token)
    assert "tokens are not taken on the command line" in failed.stderr
    assert "--tokens-from env" in failed.stderr
    assert not twitch.requests  # refused before anything was sent
    assert (await cli.ok("users", "list")).stdout.strip() == NO_USERS
    assert_no_secrets([failed], tokens_of(alice))


async def test_users_add_logs_in_with_the_device_code_flow(twitch: FakeTwitch, cli: Cli) -> None:
    alice = twitch.add_user("alice")
    twitch.add_user("partner")
    issued_before = tokens_of(alice)
    added, user_code = await device_add(twitch, cli, alice, "Alice", "-c", "partner")
    assert added.exit_code == 0, added.output
    assert "https://www.twitch.tv/activate" in added.stdout
    assert user_code in added.stdout
    assert f"Added: alice (id {alice.id}), reading chat in #partner." in added.stdout
    assert alice.access_token not in issued_before  # the device flow issued a new pair
    row = (await cli.rows())["alice"]
    assert (row["ENABLED"], row["CHANNELS"], row["STATUS"]) == ("yes", "#partner", "ok")
    assert_no_secrets([added], [*tokens_of(alice), *twitch.oauth.devices])  # devices: keyed by device code


async def test_device_flow_approved_by_another_account_stores_nothing(twitch: FakeTwitch, cli: Cli) -> None:
    twitch.add_user("alice")
    bob = twitch.add_user("bob")
    failed, _ = await device_add(twitch, cli, bob, "alice")
    assert failed.exit_code == 1, failed.output
    assert "you approved the login as 'bob', but asked to add 'alice'" in failed.stderr
    assert (await cli.ok("users", "list")).stdout.strip() == NO_USERS
    assert_no_secrets([failed], [*tokens_of(bob), *twitch.oauth.devices])


async def test_adding_an_existing_user_logs_in_again_and_keeps_its_settings(
    twitch: FakeTwitch, cli: Cli
) -> None:
    alice = twitch.add_user("alice")
    twitch.add_user("partner")
    await cli.import_user(alice, "partner")
    await cli.ok("users", "disable", "alice")
    await cli.ok("users", "set", "alice", "--mode", "hex")
    again = await cli.import_user(alice)
    assert again.stdout.startswith(f"Logged in again: alice (id {alice.id}), reading chat in #partner.\n")
    row = (await cli.rows())["alice"]
    assert (row["CHANNELS"], row["ENABLED"], row["MODE"]) == ("#partner", "no", "hex")
    assert_no_secrets([again], tokens_of(alice))


async def test_users_list_without_users_says_how_to_add_one(cli: Cli) -> None:
    assert (await cli.ok("users", "list")).stdout == NO_USERS + "\n"


async def test_users_add_refuses_a_login_that_cannot_be_one(twitch: FakeTwitch, cli: Cli) -> None:
    failed = await cli.fails(1, "users", "add", "not a login")
    assert "'not a login' is not a Twitch channel name" in failed.stderr
    assert not twitch.requests


# --- changing users --------------------------------------------------------------------------------


async def test_users_enable_and_disable(twitch: FakeTwitch, cli: Cli) -> None:
    await cli.import_user(twitch.add_user("alice"))
    disabled = await cli.ok("users", "disable", "Alice")
    assert disabled.stdout == "alice: colour changes disabled.\n"
    row = (await cli.rows())["alice"]
    assert (row["ENABLED"], row["STATUS"]) == ("no", "disabled")
    enabled = await cli.ok("users", "enable", "alice")
    assert enabled.stdout == "alice: colour changes enabled.\n"
    row = (await cli.rows())["alice"]
    assert (row["ENABLED"], row["STATUS"]) == ("yes", "ok")
    for command in ("enable", "disable"):
        failed = await cli.fails(1, "users", command, "nobody")
        assert "no user 'nobody'" in failed.stderr


async def test_users_set(twitch: FakeTwitch, cli: Cli) -> None:
    await cli.import_user(twitch.add_user("alice"))
    changed = await cli.ok("users", "set", "alice", "--mode", "hex", "--hex", "never")
    assert changed.stdout == "alice: mode hex, hex never, readability dark.\n"
    row = (await cli.rows())["alice"]
    assert (row["MODE"], row["HEX"]) == ("hex", "never")
    only_mode = await cli.ok("users", "set", "alice", "--mode", "preset")
    assert only_mode.stdout == "alice: mode preset, hex never, readability dark.\n"  # --hex left alone

    nothing = await cli.fails(2, "users", "set", "alice")
    assert "nothing to set: give --mode, --hex, --readability, --rainbow-step, --palette or" in nothing.stderr
    bad_choice = await cli.fails(2, "users", "set", "alice", "--mode", "disco")
    assert "Invalid value for '--mode'" in bad_choice.stderr
    assert "'disco' is not one of 'preset', 'hex', 'rainbow', 'palette'" in bad_choice.stderr
    bad_hex = await cli.fails(2, "users", "set", "alice", "--hex", "sometimes")
    assert "Invalid value for '--hex'" in bad_hex.stderr
    unknown = await cli.fails(1, "users", "set", "nobody", "--mode", "hex")
    assert "no user 'nobody'" in unknown.stderr
    row = (await cli.rows())["alice"]
    assert (row["MODE"], row["HEX"]) == ("preset", "never")


async def test_users_set_colour_modes(twitch: FakeTwitch, cli: Cli, database: Path) -> None:
    await cli.import_user(twitch.add_user("alice"))
    rainbow = await cli.ok("users", "set", "alice", "--mode", "rainbow", "--rainbow-step", "45")
    assert rainbow.stdout == "alice: mode rainbow (step 45), hex auto, readability dark.\n"
    light = await cli.ok("users", "set", "alice", "--readability", "light")
    assert light.stdout == "alice: mode rainbow (step 45), hex auto, readability light.\n"
    row = (await cli.rows())["alice"]
    assert (row["MODE"], row["READABILITY"]) == ("rainbow (step 45)", "light")

    palette = await cli.ok(
        "users", "set", "alice", "--mode", "palette", "--palette", " red, #9146ff ,blue violet,f0a"
    )
    assert palette.stdout == (
        "alice: mode palette (4 colours, cycle), hex auto, readability light; "
        "palette red, #9146FF, blue_violet, #FF00AA.\n"
    )
    shuffled = await cli.ok("users", "set", "alice", "--palette-order", "shuffle")
    assert "mode palette (4 colours, shuffle)" in shuffled.stdout
    assert (await cli.rows())["alice"]["MODE"] == "palette (4 colours, shuffle)"
    async with await Accounts.open(database) as accounts:
        account = await accounts.get("alice")
    assert account is not None
    state = account.state
    assert (state.mode, state.rainbow_step, state.readability) == ("palette", 45, "light")
    assert (state.palette, state.palette_order) == (("red", "#9146FF", "blue_violet", "#FF00AA"), "shuffle")

    # Palette mode needs a palette: neither emptied nor chosen without one; nothing changes then.
    emptied = await cli.fails(1, "users", "set", "alice", "--palette", "")
    assert "alice would be in palette mode without a palette: give --palette" in emptied.stderr
    await cli.ok("users", "set", "alice", "--mode", "hex", "--palette", "")
    no_palette = await cli.fails(1, "users", "set", "alice", "--mode", "palette")
    assert "alice would be in palette mode without a palette" in no_palette.stderr
    assert (await cli.rows())["alice"]["MODE"] == "hex"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--palette", "red,#zzz,coral"), "palette entry 2: not a colour: '#zzz'"),
        (("--palette", "red,,coral"), "palette entry 2: not a colour: ''"),
        (("--palette", "red,random"), "palette entry 2: 'random' is not a colour a palette can hold"),
        (("--palette", ",".join(["red"] * 33)), "a palette holds at most 32 colours, not 33"),
        (("--rainbow-step", "0"), "Invalid value for '--rainbow-step': 0 is not in the range 1<=x<=359"),
        (("--rainbow-step", "360"), "Invalid value for '--rainbow-step'"),
        (("--rainbow-step", "ten"), "Invalid value for '--rainbow-step'"),
        (("--readability", "dim"), "'dim' is not one of 'dark', 'light', 'both', 'off'"),
        (("--palette-order", "random"), "'random' is not one of 'cycle', 'shuffle'"),
    ],
)
async def test_users_set_refuses_bad_colour_options(
    twitch: FakeTwitch, cli: Cli, args: tuple[str, ...], message: str
) -> None:
    await cli.import_user(twitch.add_user("alice"))
    failed = await cli.fails(2, "users", "set", "alice", "--mode", "rainbow", *args)
    assert message in failed.stderr
    row = (await cli.rows())["alice"]
    assert (row["MODE"], row["READABILITY"]) == ("preset", "dark")  # nothing was changed


async def test_users_channels_add_and_remove(twitch: FakeTwitch, cli: Cli) -> None:
    alice = twitch.add_user("alice")
    twitch.add_user("other")
    await cli.import_user(alice)
    added = await cli.ok("users", "channels", "add", "alice", "#Other")
    assert added.stdout == "alice: reading chat in #alice, #other.\n"
    assert [r.user_id for r in twitch.requests if r.path == "/helix/users"][-1] == alice.id
    assert (await cli.rows())["alice"]["CHANNELS"] == "#alice, #other"

    missing = await cli.fails(1, "users", "channels", "remove", "alice", "other", "nothere")
    assert "nothere" in missing.stderr
    assert "nothing removed" in missing.stderr
    assert (await cli.rows())["alice"]["CHANNELS"] == "#alice, #other"

    removed = await cli.ok("users", "channels", "remove", "alice", "Other")
    assert removed.stdout == "alice: reading chat in #alice.\n"
    assert (await cli.rows())["alice"]["CHANNELS"] == "#alice"

    ghost = await cli.fails(1, "users", "channels", "add", "alice", "ghost")
    assert "no Twitch channel named 'ghost'" in ghost.stderr
    assert (await cli.rows())["alice"]["CHANNELS"] == "#alice"
    for command in ("add", "remove"):
        unknown = await cli.fails(1, "users", "channels", command, "nobody", "other")
        assert "no user 'nobody'" in unknown.stderr
    usage = await cli.fails(2, "users", "channels", "add", "alice")  # no channel named at all
    assert "Missing argument 'NAMES...'" in usage.stderr


async def test_channels_add_refreshes_an_expired_token_once_and_saves_the_new_pair(
    twitch: FakeTwitch, cli: Cli, database: Path
) -> None:
    alice = twitch.add_user("alice")
    twitch.add_user("other")
    twitch.add_user("third")
    await cli.import_user(alice)
    imported = tokens_of(alice)
    twitch.expire_access_token(alice)

    added = await cli.ok("users", "channels", "add", "alice", "other")
    assert added.stdout == "alice: reading chat in #alice, #other.\n"
    refreshes = [r for r in twitch.requests if r.path == "/oauth2/token"]
    assert len(refreshes) == 1
    assert tokens_of(alice) != imported  # the fake rotated the pair; the old refresh token is dead
    async with await Accounts.open(database) as accounts:
        account = await accounts.get("alice")
    assert account is not None
    assert account.tokens is not None
    assert (account.tokens.access_token, account.tokens.refresh_token) == tuple(tokens_of(alice))

    again = await cli.ok("users", "channels", "add", "alice", "third")  # works with the saved pair
    assert again.stdout == "alice: reading chat in #alice, #other, #third.\n"
    assert len([r for r in twitch.requests if r.path == "/oauth2/token"]) == 1
    assert_no_secrets([added, again], imported + tokens_of(alice))


async def test_users_remove(twitch: FakeTwitch, cli: Cli) -> None:
    await cli.import_user(twitch.add_user("alice"))
    await cli.import_user(twitch.add_user("bob"))
    removed = await cli.ok("users", "remove", "ALICE")
    assert removed.stdout == "Removed alice.\n"
    assert list(await cli.rows()) == ["bob"]
    failed = await cli.fails(1, "users", "remove", "alice")
    assert "no user 'alice'" in failed.stderr
    assert list(await cli.rows()) == ["bob"]


async def test_users_remove_revokes_the_tokens_at_twitch(twitch: FakeTwitch, cli: Cli) -> None:
    alice = twitch.add_user("alice")
    bob = twitch.add_user("bob")
    await cli.import_user(alice)
    await cli.import_user(bob)
    access, refresh = alice.access_token, alice.refresh_token
    removed = await cli.ok("users", "remove", "alice")
    assert removed.stdout == "Removed alice.\n"
    assert twitch.tokens.live(access) is None  # no live credential left behind
    assert twitch.tokens.by_refresh(refresh) is None
    assert twitch.tokens.live(bob.access_token) is not None  # only alice's
    assert_no_secrets([removed], [access, refresh])


# --- configuration -------------------------------------------------------------------------------


async def test_every_config_problem_is_reported_with_line_and_key(cli: Cli, config_file: Path) -> None:
    write(config_file, "twitch:\n  client_id: abc\ncolors:\n  no_repeat: lots\n  colour_mode: hex\n")
    failed = await cli.fails(2, "users", "list")
    assert f"{config_file}:4: colors.no_repeat: must be a whole number, not 'lots'" in failed.stderr
    assert f"{config_file}:5: colors: unknown key 'colour_mode'" in failed.stderr
    assert not (config_file.parent / "colorchanger.sqlite3").exists()  # nothing touched


async def test_malformed_yaml_is_reported_with_its_line(cli: Cli, config_file: Path) -> None:
    write(config_file, "twitch:\n  client_id: abc\ndatabase: a: b\n")
    failed = await cli.fails(2, "users", "list")
    assert f"{config_file}:3: not valid YAML: mapping values are not allowed here" in failed.stderr


async def test_a_database_directory_that_cannot_be_made_is_one_line(cli: Cli, config_file: Path) -> None:
    write(config_file.parent / "afile", "")
    write(config_file, "database: afile/state/colorchanger.sqlite3\n")
    failed = await cli.fails(1, "users", "list")
    assert f"Error: cannot create the database directory {config_file.parent / 'afile' / 'state'}: " in (
        failed.stderr
    )


async def test_a_missing_config_file_given_by_option_is_an_error(cli: Cli, tmp_path: Path) -> None:
    cli.config = tmp_path / "nowhere.yaml"
    failed = await cli.fails(2, "users", "list")
    assert f"{tmp_path / 'nowhere.yaml'}: config file not found (given by --config)" in failed.stderr


async def test_without_any_config_listing_works_but_adding_says_what_to_write(
    environment: Path, tmp_path: Path
) -> None:
    cli = Cli(None, environment)
    app_dir = tmp_path / "xdg" / "colorchanger"
    failed = await cli.fails(2, "users", "add", "alice")
    assert f"create {environment / 'colorchanger.yaml'} containing these 2 lines" in failed.stderr
    assert "twitch:\n  client_id: " in failed.stderr
    assert "COLORCHANGER_CLIENT_ID" in failed.stderr
    assert not app_dir.exists()  # refused before any database was made

    assert (await cli.ok("users", "list")).stdout.strip() == NO_USERS
    assert (app_dir / "colorchanger.sqlite3").exists()
    shown = await cli.ok("config")
    assert "config file: none found\n" in shown.stdout
    assert f"searched: {environment / 'colorchanger.yaml'}, {app_dir / 'config.yaml'}\n" in shown.stdout
    assert f"database:    {app_dir / 'colorchanger.sqlite3'}\n" in shown.stdout
    assert "client id:   missing" in shown.stdout
    assert "client_id" in (await cli.fails(2, "run")).stderr


async def test_client_id_from_the_environment_needs_no_file(
    twitch: FakeTwitch, environment: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLORCHANGER_CLIENT_ID", twitch.client_id)
    # Without a file the endpoints are Twitch's real ones: aim them at the fake so nothing leaves the host.
    fake_endpoints = functools.partial(
        config_module.Endpoints, helix=twitch.helix_url, oauth=twitch.id_url, eventsub=twitch.eventsub_url
    )
    monkeypatch.setattr(config_module, "Endpoints", fake_endpoints)
    cli = Cli(None, environment)
    alice = twitch.add_user("alice")
    added = await cli.import_user(alice)
    assert "Added: alice" in added.stdout
    assert list(await cli.rows()) == ["alice"]
    shown = await cli.ok("config")
    assert "config file: none found" in shown.stdout
    assert "client id:   set" in shown.stdout
    assert (tmp_path / "xdg" / "colorchanger" / "colorchanger.sqlite3").exists()
    assert_no_secrets([added, shown], [*tokens_of(alice), twitch.client_id])


async def test_config_command_names_the_file_and_the_database(
    cli: Cli, config_file: Path, database: Path
) -> None:
    shown = await cli.ok("config")
    assert shown.stdout == (f"config file: {config_file}\ndatabase:    {database}\nclient id:   set\n")


async def test_config_found_in_the_working_directory(
    twitch: FakeTwitch, environment: Path, config_file: Path
) -> None:
    shutil.copyfile(config_file, environment / "colorchanger.yaml")
    shown = await Cli(None, environment).ok("config")
    assert f"config file: {environment / 'colorchanger.yaml'}\n" in shown.stdout
    assert f"database:    {environment / 'state' / 'colorchanger.sqlite3'}\n" in shown.stdout


# --- help, version and the README ------------------------------------------------------------------


def command_paths(group: click.Group = main, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield prefix
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from command_paths(command, (*prefix, name))
        else:
            yield (*prefix, name)


def test_the_command_tree() -> None:
    assert sorted(" ".join(path) for path in command_paths()) == [
        "",
        "config",
        "demo",
        "run",
        "status",
        "users",
        "users add",
        "users channels",
        "users channels add",
        "users channels remove",
        "users disable",
        "users enable",
        "users list",
        "users remove",
        "users set",
    ]


@pytest.mark.parametrize("path", list(command_paths()), ids=lambda path: " ".join(path) or "main")
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help(path: tuple[str, ...], flag: str) -> None:
    result = CliRunner().invoke(main, [*path, flag], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Usage: ")
    assert not result.stderr


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert importlib.metadata.version("twitchio-colorchanger") in result.stdout


def readme_commands(text: str) -> list[list[str]]:
    """The words after every ``colorchanger-runner`` in fenced code blocks and inline code spans."""
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M)
    prose = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.S | re.M)
    snippets = [*blocks, *re.findall(r"`([^`\n]+)`", prose)]
    found: list[list[str]] = []
    for snippet in snippets:
        for line in snippet.replace("\\\n", " ").splitlines():
            try:
                words = shlex.split(line, comments=True)
            except ValueError:
                words = line.split()
            for index, word in enumerate(words):
                if word.rsplit("/", 1)[-1] == "colorchanger-runner":
                    rest = words[index + 1 :]
                    end = next((i for i, w in enumerate(rest) if w in {"&&", "||", "|", ";", ">"}), None)
                    found.append(rest[:end])
    return found


def check_command(words: list[str]) -> str | None:
    """Why these words are not a command of ``main``, or None if they are."""
    command: click.Command = main
    args = iter(words)
    for word in args:
        if word == "..." or word.isupper() or word[:1] in "<[":  # a placeholder ends what can be checked
            return None
        if word.startswith("-"):
            name = word.split("=", 1)[0]
            option = next(
                (
                    p
                    for p in command.params
                    if isinstance(p, click.Option) and name in p.opts + p.secondary_opts
                ),
                None,
            )
            if name in {"-h", "--help"}:
                continue
            if option is None:
                return f"{command.name} has no option {name}"
            if not option.is_flag and not option.count and "=" not in word:
                next(args, None)  # the option's value
            continue
        if not isinstance(command, click.Group):
            return None  # an argument of a command
        sub = command.commands.get(word)
        if sub is None:
            return f"no command {word!r} in {command.name}: {', '.join(command.commands)}"
        command = sub
    return None


def test_check_command_tells_commands_from_invented_ones() -> None:
    assert check_command(["users", "add", "alice", "--channel", "#x"]) is None
    assert check_command(["--config", "c.yaml", "users", "channels", "remove", "LOGIN", "x"]) is None
    assert check_command(["users", "rename", "alice"]) is not None
    assert check_command(["channels", "add"]) is not None
    assert check_command(["--verbose", "run"]) is not None


def test_readme_names_only_commands_that_exist() -> None:
    if not README.is_file():
        pytest.skip("README.md is not beside the tests (installed package without a checkout)")
    commands = readme_commands(README.read_text(encoding="utf-8"))
    assert commands, "no colorchanger-runner command found in README.md"
    problems = [
        f"colorchanger-runner {' '.join(words)}: {why}" for words in commands if (why := check_command(words))
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("source", ["env", "stdin", "-"])
async def test_users_add_imports_tokens_from_the_environment_or_stdin(
    twitch: FakeTwitch, cli: Cli, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = twitch.add_user("alice")
    pair = f"# alice's pair\n{alice.access_token}\n\n{alice.refresh_token}\n"
    if source == "env":
        monkeypatch.setenv("COLORCHANGER_ACCESS_TOKEN", alice.access_token)
        monkeypatch.setenv("COLORCHANGER_REFRESH_TOKEN", alice.refresh_token)
    argv = [*(["--config", str(cli.config)] if cli.config else []), "users", "add", "alice"]
    invoke = functools.partial(
        CliRunner().invoke,
        main,
        [*argv, "--tokens-from", source],
        input=pair if source != "env" else None,
        catch_exceptions=False,
    )
    added = await asyncio.to_thread(invoke)
    assert added.exit_code == 0, added.output
    assert "Added: alice" in added.stdout
    assert (await cli.rows())["alice"]["LOGIN"] == "alice"
    assert_no_secrets([added], tokens_of(alice))


@pytest.mark.parametrize(
    ("content", "problem"),
    [("", "found 0 non-blank lines"), ("one-token-only\n", "found 1"), ("a b\nc\n", "expected two lines")],
)
async def test_users_add_says_what_is_wrong_with_a_token_file(
    twitch: FakeTwitch, cli: Cli, tmp_path: Path, content: str, problem: str
) -> None:
    twitch.add_user("alice")
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(content, encoding="utf-8")
    failed = await cli.fails(1, "users", "add", "alice", "--tokens-from", str(tokens))
    assert f"--tokens-from {tokens}: " in failed.stderr
    assert problem in failed.stderr
    assert not twitch.requests
    missing = await cli.fails(1, "users", "add", "alice", "--tokens-from", str(tmp_path / "nope"))
    assert "cannot read it" in missing.stderr
