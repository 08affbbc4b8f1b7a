"""bot_runner.config: one frozen Config from YAML and env; every problem at once; secrets never shown."""

from __future__ import annotations

import tempfile
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot_runner.config import (
    CLIENT_ID_ENV,
    CLIENT_SECRET_ENV,
    CONFIG_ENV,
    DEFAULT_EVENTSUB,
    DEFAULT_HELIX,
    DEFAULT_OAUTH,
    Config,
    ConfigError,
    Endpoints,
    LoggingConfig,
    Problem,
    find_config,
    load_config,
    search_locations,
)
from colorchanger_ext.settings import ColorSettings

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.yaml"
SECRET = "s3cr3tvalue0123456789abcdefghij"


def write(directory: Path, text: str, name: str = "colorchanger.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(directory: Path, text: str, env: dict[str, str] | None = None) -> Config:
    return load_config(write(directory, text), env=env or {}, app_dir=directory / "app")


def problems(directory: Path, text: str, env: dict[str, str] | None = None) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        load(directory, text, env)
    return caught.value.problems


def one_problem(directory: Path, text: str) -> Problem:
    found = problems(directory, text)
    assert len(found) == 1, found
    return found[0]


# --- the shipped example and the defaults -------------------------------------------------------------


def test_example_loads_as_shipped_and_equals_the_defaults_where_it_says_so() -> None:
    config = load_config(EXAMPLE, env={}, app_dir=Path("/nonexistent"))
    database = EXAMPLE.parent / "colorchanger.sqlite3"
    assert config.source == EXAMPLE
    assert config.client_id == "your-client-id"
    assert config.client_secret is None
    assert config.database == database
    assert config.colors == ColorSettings(database=database)
    assert config.logging == LoggingConfig()
    assert config.endpoints == Endpoints() == Endpoints(DEFAULT_HELIX, DEFAULT_OAUTH, DEFAULT_EVENTSUB)
    assert config.health_port is None
    assert config.restore_colour_on_exit is False


def test_example_documents_every_key_with_a_comment() -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if line.strip() and not line.lstrip().startswith("#") and ":" in line:
            commented = "#" in line or lines[number - 1].lstrip().startswith("#")
            assert commented, f"line {number + 1} has no comment: {line!r}"


def test_the_example_placeholder_client_id_is_refused_when_needed() -> None:
    config = load_config(EXAMPLE, env={}, app_dir=Path("/nonexistent"))
    with pytest.raises(ConfigError, match="still the example's 'your-client-id'"):
        config.require_client_id()


def test_no_config_file_gives_defaults_and_says_exactly_what_to_add(tmp_path: Path) -> None:
    app = tmp_path / "app"
    config = load_config(None, env={}, app_dir=app, cwd=tmp_path)
    assert config.source is None
    assert config.client_id is None
    assert config.database == app / "colorchanger.sqlite3"
    assert config.colors == ColorSettings(database=app / "colorchanger.sqlite3")
    assert (config.logging, config.endpoints, config.health_port) == (LoggingConfig(), Endpoints(), None)
    with pytest.raises(ConfigError) as caught:
        config.require_client_id()
    message = str(caught.value)
    assert f"create {tmp_path / 'colorchanger.yaml'} containing" in message
    assert '\ntwitch:\n  client_id: "your-client-id"\n' in message
    assert "https://dev.twitch.tv/console" in message
    assert CLIENT_ID_ENV in message
    snippet = message.split("\n")[1:3]
    assert yaml.safe_load("\n".join(snippet)) == {"twitch": {"client_id": "your-client-id"}}


def test_require_client_id_names_the_file_that_lacks_it(tmp_path: Path) -> None:
    config = load(tmp_path, "logging: {level: DEBUG}\n")
    with pytest.raises(ConfigError) as caught:
        config.require_client_id()
    assert str(caught.value) == (
        f"no Twitch client id: set twitch.client_id in {tmp_path / 'colorchanger.yaml'} (or {CLIENT_ID_ENV})"
    )
    assert load(tmp_path, "twitch: {client_id: abc123}\n").require_client_id() == "abc123"


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n", "~\n"])
def test_an_empty_file_means_all_defaults(tmp_path: Path, text: str) -> None:
    config = load(tmp_path, text)
    assert config.source == tmp_path / "colorchanger.yaml"
    assert config.database == tmp_path / "colorchanger.sqlite3"
    assert config.logging == LoggingConfig()
    assert config.endpoints == Endpoints()


def test_every_key_read_into_the_config(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        twitch:
          client_id: 0123abc
          client_secret: "shh-its-a-secret"
          endpoints:
            helix: http://127.0.0.1:8080/mock
            oauth: https://auth.example.com/base
            eventsub: ws://localhost:8080/ws
        database: data/colors.db
        colors:
          mode: HEX
          hex_policy: never
          no_repeat: 3
          min_contrast: 4
          hex_retry_after_hours: 1.5
          readability: Both
          rainbow_step: 45
        logging:
          level: debug
          format: JSON
          file: logs/runner.log
          max_bytes: 1000
          backup_count: 0
        health_port: 8081
        """,
    )
    database = tmp_path / "data" / "colors.db"
    assert config.client_id == "0123abc"
    assert config.client_secret == "shh-its-a-secret"
    assert config.endpoints == Endpoints(
        helix="http://127.0.0.1:8080/mock/",
        oauth="https://auth.example.com/base/",
        eventsub="ws://localhost:8080/ws",
    )
    assert config.database == database
    assert config.colors == ColorSettings(
        database=database,
        mode="hex",
        hex_policy="never",
        no_repeat=3,
        min_contrast=4,
        hex_retry_after=5400.0,
        readability="both",
        rainbow_step=45,
    )
    assert config.logging == LoggingConfig("DEBUG", "json", tmp_path / "logs" / "runner.log", 1000, 0)
    assert config.health_port == 8081


# --- paths -------------------------------------------------------------------------------------------


def test_relative_paths_resolve_against_the_config_files_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config_dir = tmp_path / "etc"
    config_dir.mkdir()
    write(config_dir, "database: ../state/cc.sqlite3\nlogging:\n  file: cc.log\n")
    config = load_config(Path("../etc/colorchanger.yaml"), env={})
    assert config.source == config_dir / "colorchanger.yaml"
    assert config.database == config_dir / ".." / "state" / "cc.sqlite3"
    assert config.colors.database == config.database
    assert config.logging.file == config_dir / "cc.log"


def test_absolute_and_home_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = load(tmp_path, "database: /var/lib/cc.sqlite3\nlogging: {file: ~/cc.log}\n")
    assert config.database == Path("/var/lib/cc.sqlite3")
    assert config.logging.file == tmp_path / "home" / "cc.log"


def test_default_database_sits_beside_the_config_file(tmp_path: Path) -> None:
    config = load(tmp_path, "colors: {mode: hex}\n")
    assert config.database == config.colors.database == tmp_path / "colorchanger.sqlite3"


# --- wrong types, each with its key path and line ----------------------------------------------------

WRONG_TYPES = [
    ("twitch", "5", "must be a mapping with keys client_id, client_secret, endpoints; not '5'"),
    ("twitch.client_id", "[a, b]", "must be text, not a list"),
    ("twitch.client_id", "true", "must be text, not a boolean"),
    ("twitch.client_secret", "{a: b}", "must be text, not a mapping"),
    ("twitch.endpoints", "[x]", "must be a mapping with keys helix, oauth, eventsub; not a list"),
    ("twitch.endpoints.helix", "{}", "must be text, not a mapping"),
    ("twitch.endpoints.oauth", "42", "must be an absolute https:// URL (http:// for a loopback host)"),
    ("twitch.endpoints.eventsub", "[]", "must be text, not a list"),
    ("database", "[a]", "must be text, not a list"),
    ("database", "null", "must be text, not null"),
    ("colors", "preset", "must be a mapping with keys mode, hex_policy, no_repeat, min_contrast,"),
    ("colors.mode", "[preset]", "must be text, not a list"),
    ("colors.hex_policy", "{}", "must be text, not a mapping"),
    ("colors.no_repeat", "abc", "must be a whole number, not 'abc'"),
    ("colors.no_repeat", "true", "must be a whole number, not 'true' (a boolean to YAML)"),
    ("colors.no_repeat", "2.0", "must be a whole number, not '2.0'"),
    ("colors.min_contrast", "high", "must be a number, not 'high'"),
    ("colors.min_contrast", "yes", "must be a number, not 'yes' (a boolean to YAML)"),
    ("colors.min_contrast", ".nan", "must be a finite number, not '.nan'"),
    ("colors.hex_retry_after_hours", "soon", "must be a number, not 'soon'"),
    ("colors.readability", "[dark]", "must be text, not a list"),
    ("colors.rainbow_step", "15.5", "must be a whole number, not '15.5'"),
    ("logging", "[]", "must be a mapping with keys level, format, file, max_bytes, backup_count; not a list"),
    ("logging.level", "10", "must be one of DEBUG, INFO, WARNING, ERROR, not '10'"),
    ("logging.format", "[json]", "must be one of text, json, not a list"),
    ("logging.file", "[a]", "must be text, not a list"),
    ("logging.max_bytes", "10MB", "must be a whole number, not '10MB'"),
    ("logging.backup_count", "false", "must be a whole number, not 'false' (a boolean to YAML)"),
    ("health_port", "http", "must be a whole number, not 'http'"),
    ("restore_colour_on_exit", "'yes'", "must be true or false, not 'yes'"),
]


def nested(path: str, value: str) -> tuple[str, int]:
    """YAML setting one dotted key, after two unrelated lines; returns (text, line of the value)."""
    keys = path.split(".")
    lines = ["# a comment first", "database: x.sqlite3" if path != "database" else "health_port: null"]
    lines += [f"{'  ' * depth}{key}:" for depth, key in enumerate(keys[:-1])]
    lines.append(f"{'  ' * (len(keys) - 1)}{keys[-1]}: {value}")
    return "\n".join(lines) + "\n", len(lines)


@pytest.mark.parametrize(("path", "value", "message"), WRONG_TYPES)
def test_every_keys_wrong_type_is_reported_with_its_line(
    tmp_path: Path, path: str, value: str, message: str
) -> None:
    text, line = nested(path, value)
    problem = one_problem(tmp_path, text)
    assert (problem.path, problem.line, problem.file) == (path, line, tmp_path / "colorchanger.yaml")
    assert problem.message.startswith(message), problem.message
    assert str(problem) == f"{tmp_path / 'colorchanger.yaml'}:{line}: {path}: {problem.message}"


def test_wrong_types_cover_every_key_in_the_schema() -> None:
    example = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))

    def leaves(mapping: dict[str, object], prefix: str = "") -> set[str]:
        found = set()
        for key, value in mapping.items():
            found.add(prefix + key)
            if isinstance(value, dict):
                found |= leaves(value, f"{prefix}{key}.")
        return found

    assert leaves(example) == {path for path, _, _ in WRONG_TYPES}


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("colors.mode", "disco", "must be one of preset, hex, rainbow, palette, not 'disco'"),
        ("colors.mode", "palette", "cannot be palette for every user: a palette is one user's own"),
        ("colors.readability", "dim", "must be one of dark, light, both, off, not 'dim'"),
        ("colors.rainbow_step", "0", "must be a whole number of degrees from 1 to 359, not 0"),
        ("colors.rainbow_step", "360", "must be a whole number of degrees from 1 to 359, not 360"),
        ("colors.hex_policy", "sometimes", "must be one of auto, always, never, not 'sometimes'"),
        ("colors.no_repeat", "15", "must be between 0 and 14 (there are 15 named colours), not 15"),
        ("colors.min_contrast", "0.5", "must be between 1 and "),
        ("colors.hex_retry_after_hours", "-1", "must be at least 0, not '-1'"),
        ("logging.level", "verbose", "must be one of DEBUG, INFO, WARNING, ERROR, not 'verbose'"),
        ("logging.format", "jsn", "must be one of text, json, not 'jsn' (did you mean json?)"),
        ("logging.max_bytes", "-1", "must be at least 0, not '-1'"),
        ("health_port", "0", "must be between 1 and 65535, not '0'"),
        ("health_port", "65536", "must be between 1 and 65535, not '65536'"),
        ("health_port", "0x" + "f" * 4000, "must be between 1 and 65535, not '0xffffffffffffffff"),
        ("colors.no_repeat", "0x" + "f" * 4000, "must be a reasonable size, not '0xfffffff"),
        ("colors.min_contrast", "0x" + "f" * 4000, "must be a finite number, not '0xfffffff"),
        ("colors.hex_retry_after_hours", "1" * 5000, "cannot read this value as !!int"),
        ("twitch.client_id", "''", "must not be empty"),
        ("twitch.client_id", "!!int abc", "cannot read this value as !!int"),
        ("health_port", "!!int", "cannot read this value as !!int"),
        ("colors.no_repeat", "2001-13-45", "cannot read this value as !!timestamp"),
        ("colors.no_repeat", "!!binary a", "cannot read this value: failed to decode base64 data"),
        ("twitch.client_id", "!custom x", "cannot read this value: could not determine a constructor"),
    ],
)
def test_values_out_of_range_or_choice(tmp_path: Path, path: str, value: str, message: str) -> None:
    text, line = nested(path, value)
    problem = one_problem(tmp_path, text)
    assert (problem.path, problem.line) == (path, line)
    assert problem.message.startswith(message), problem.message


def test_several_problems_in_one_file_are_all_reported_in_line_order(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """\
        logging:
          level: LOUD
        colors:
          no_repeat: many
          mode: disco
        health_port: 0
        twitch:
          endpoints:
            helix: http://example.com
        """,
    )
    assert [(p.line, p.path) for p in found] == [
        (2, "logging.level"),
        (4, "colors.no_repeat"),
        (5, "colors.mode"),
        (6, "health_port"),
        (9, "twitch.endpoints.helix"),
    ]
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, (tmp_path / "colorchanger.yaml").read_text(encoding="utf-8"))
    assert str(caught.value).splitlines() == [str(p) for p in found]


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    problem = one_problem(tmp_path, "- twitch\n- colors\n")
    assert (problem.path, problem.line) == ("", 1)
    assert problem.message.startswith("must be a mapping with keys twitch, database, colors")
    assert str(problem).startswith(f"{tmp_path / 'colorchanger.yaml'}:1: must be a mapping")


def test_null_sections_mean_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, "twitch:\ncolors:\nlogging: ~\n")
    assert (config.logging, config.endpoints, config.client_id) == (LoggingConfig(), Endpoints(), None)


# --- unknown and duplicate keys ----------------------------------------------------------------------


def test_unknown_key_with_a_suggestion(tmp_path: Path) -> None:
    problem = one_problem(tmp_path, "database: x\ncolour:\n  mode: hex\n")
    assert (problem.path, problem.line) == ("", 2)
    assert problem.message == "unknown key 'colour' (did you mean 'colors'?)"
    assert str(problem) == f"{tmp_path / 'colorchanger.yaml'}:2: {problem.message}"


def test_unknown_nested_key_and_a_key_in_the_wrong_section(tmp_path: Path) -> None:
    found = problems(tmp_path, "twitch:\n  clientid: abc\nclient_secret: x\nfoo: 1\n")
    assert [(p.line, p.path, p.message) for p in found] == [
        (2, "twitch", "unknown key 'clientid' (did you mean 'client_id'?)"),
        (3, "", "unknown key 'client_secret' here (did you mean 'twitch.client_secret'?)"),
        (
            4,
            "",
            "unknown key 'foo' (known keys: twitch, database, colors, logging, health_port, "
            "restore_colour_on_exit)",
        ),
    ]


def test_duplicate_keys_are_reported(tmp_path: Path) -> None:
    found = problems(tmp_path, "colors:\n  mode: hex\n  no_repeat: 2\n  mode: preset\ncolors: {}\n")
    assert [(p.line, p.path, p.message) for p in found] == [
        (4, "colors", "duplicate key 'mode' (first at line 2)"),
        (5, "", "duplicate key 'colors' (first at line 1)"),
    ]


def test_non_name_keys_are_reported(tmp_path: Path) -> None:
    problem = one_problem(tmp_path, "? [a, b]\n: 1\n")
    assert problem.message == "keys must be names, not a list"


# --- malformed YAML ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("twitch:\n  client_id: abc\n  endpoints: [x\n", 4, "expected ',' or ']'"),
        ("colors:\n  mode: hex\n no_repeat: 2\n", 3, "expected <block end>"),
        ("database: a: b\n", 1, "mapping values are not allowed here at column 12"),
        ("a: 1\n---\nb: 2\n", 2, "but found another document"),
        ("logging:\n\tlevel: INFO\n", 2, "found character '\\t' that cannot start any token"),
        ("database: x\nhealth_port: 1\x00\n", 2, "character #x0000 is not allowed"),
    ],
)
def test_malformed_yaml_is_one_problem_with_its_line(
    tmp_path: Path, text: str, line: int, fragment: str
) -> None:
    problem = one_problem(tmp_path, text)
    assert problem.line == line
    assert problem.message.startswith("not valid YAML: ")
    assert fragment in problem.message


def test_absurd_nesting_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    assert one_problem(tmp_path, "twitch: " + "[" * 5000).message == "not readable: nested too deeply"


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "colorchanger.yaml"
    path.write_bytes(b"database: x\nlogging:\n  file: caf\xe9.log\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert [(p.line, p.message) for p in caught.value.problems] == [(3, "not UTF-8 text")]


def test_an_unreadable_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path, env={})


# --- endpoints ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "url"),
    [
        ("helix", "http://example.com"),
        ("oauth", "http://10.0.0.1:8080/"),
        ("helix", "http://127.0.0.1.example.com/"),
        ("eventsub", "ws://localhost.example.com/ws"),
        ("eventsub", "ws://[::2]/ws"),
    ],
)
def test_non_tls_endpoints_are_refused_unless_loopback(tmp_path: Path, key: str, url: str) -> None:
    problem = one_problem(tmp_path, f"twitch:\n  endpoints:\n    {key}: {url}\n")
    assert (problem.path, problem.line) == (f"twitch.endpoints.{key}", 3)
    assert problem.message == f"refusing non-TLS endpoint {url}: only loopback hosts may skip TLS"


def test_loopback_endpoints_may_skip_tls_and_base_urls_end_with_a_slash(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        twitch:
          endpoints:
            helix: http://127.0.0.1:8080/mock
            oauth: http://[::1]:9000
            eventsub: ws://LOCALHOST:8080/ws
        """,
    )
    assert config.endpoints == Endpoints(
        helix="http://127.0.0.1:8080/mock/", oauth="http://[::1]:9000/", eventsub="ws://LOCALHOST:8080/ws"
    )
    assert load(tmp_path, "twitch: {endpoints: {helix: 'http://127.9.9.9/'}}").endpoints.helix == (
        "http://127.9.9.9/"
    )


@pytest.mark.parametrize(
    ("key", "url", "message"),
    [
        ("helix", "api.twitch.tv/helix", "must be an absolute https:// URL"),
        ("helix", "wss://api.twitch.tv/", "must be an absolute https:// URL"),
        ("eventsub", "https://eventsub.wss.twitch.tv/ws", "must be an absolute wss:// URL"),
        ("oauth", "https:///path", "must be an absolute https:// URL"),
        ("oauth", "https://id.twitch.tv:99999/", "not a valid URL"),
        ("helix", "https://api.twitch.tv/helix?x=1", "must not have a query or fragment"),
    ],
)
def test_endpoints_must_be_absolute_urls_of_the_right_scheme(
    tmp_path: Path, key: str, url: str, message: str
) -> None:
    problem = one_problem(tmp_path, f"twitch:\n  endpoints:\n    {key}: '{url}'\n")
    assert problem.path == f"twitch.endpoints.{key}"
    assert problem.message.startswith(message), problem.message


# --- environment -------------------------------------------------------------------------------------


def test_env_overrides_client_id_and_secret(tmp_path: Path) -> None:
    text = "twitch:\n  client_id: from-file\n  client_secret: file-secret\n"
    env = {CLIENT_ID_ENV: "from-env", CLIENT_SECRET_ENV: "env-secret"}
    config = load(tmp_path, text, env)
    assert (config.client_id, config.client_secret) == ("from-env", "env-secret")
    config = load(tmp_path, text, {CLIENT_ID_ENV: "", CLIENT_SECRET_ENV: "  "})
    assert (config.client_id, config.client_secret) == ("from-file", "file-secret")


def test_env_gives_a_client_id_without_any_config_file(tmp_path: Path) -> None:
    config = load_config(None, env={CLIENT_ID_ENV: "abc"}, app_dir=tmp_path)
    assert config.require_client_id() == "abc"
    assert config.client_secret is None


# --- finding the file --------------------------------------------------------------------------------


@pytest.fixture
def places(tmp_path: Path) -> dict[str, Path]:
    """One config file in each place find_config looks."""
    made = {name: tmp_path / name for name in ("explicit", "env", "cwd", "app")}
    for directory in made.values():
        directory.mkdir()
    return {
        "explicit": write(made["explicit"], "", "mine.yaml"),
        "env": write(made["env"], "", "from-env.yaml"),
        "cwd": write(made["cwd"], ""),
        "app": write(made["app"], "", "config.yaml"),
    }


def test_discovery_order_is_option_then_env_then_cwd_then_app_dir(places: dict[str, Path]) -> None:
    env = {CONFIG_ENV: str(places["env"])}
    where = {"cwd": places["cwd"].parent, "app_dir": places["app"].parent}
    assert find_config(places["explicit"], env=env, **where) == places["explicit"]
    assert find_config(None, env=env, **where) == places["env"]
    assert find_config(None, env={}, **where) == places["cwd"]
    places["cwd"].unlink()
    assert find_config(None, env={}, **where) == places["app"]
    places["app"].unlink()
    assert find_config(None, env={}, **where) is None
    assert find_config(None, env={CONFIG_ENV: ""}, **where) is None


def test_search_locations_for_help_text(tmp_path: Path) -> None:
    assert search_locations(env={}, cwd=tmp_path, app_dir=tmp_path / "app") == [
        tmp_path / "colorchanger.yaml",
        tmp_path / "app" / "config.yaml",
    ]
    assert search_locations(env={CONFIG_ENV: "/etc/cc.yaml"}, cwd=tmp_path, app_dir=tmp_path)[0] == Path(
        "/etc/cc.yaml"
    )


def test_an_explicit_path_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    write(tmp_path, "")  # an implicit candidate exists, but a named file must not be silently swapped
    with pytest.raises(ConfigError) as caught:
        find_config(missing, env={}, cwd=tmp_path, app_dir=tmp_path)
    assert str(caught.value) == f"{missing}: config file not found (given by --config)"
    with pytest.raises(ConfigError) as caught:
        find_config(None, env={CONFIG_ENV: str(missing)}, cwd=tmp_path, app_dir=tmp_path)
    assert str(caught.value) == f"{missing}: config file not found (given by ${CONFIG_ENV})"
    with pytest.raises(ConfigError, match="is a directory"):
        find_config(tmp_path, env={}, cwd=tmp_path, app_dir=tmp_path)


# --- the secret stays secret -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f"twitch:\n  client_secret: {SECRET}\n  client_id: [x]\ncolors: {{mode: x}}\n",
        f"twitch:\n  client_secret: '{SECRET}\n",  # unterminated quote: YAML's own message quotes the line
        f"twitch:\n  client_secret:{SECRET}\n",  # no space: one scalar where a mapping belongs
        f"client_secret:{SECRET}\n",
        f"twitch:\n  client_secret: !!int {SECRET}\n",
        f"twitch:\n  client_secret: *{SECRET}\n",
        f"twitch:\n  client_secret: {SECRET}\n  client_secret: {SECRET}\n",
        f"twitch:\n  client_secret: {SECRET}: x\n",
        f"twitch:\n  client_secret {SECRET}: x\n",
        f"health_port: env-{SECRET}\n",  # the env var's secret, wherever it turns up
    ],
)
def test_the_secret_never_appears_in_an_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, {CLIENT_SECRET_ENV: "env-" + SECRET})
    assert caught.value.problems
    for shown in (str(caught.value), repr(caught.value), repr(caught.value.problems)):
        assert SECRET[:12] not in shown


def test_the_secret_never_appears_in_the_configs_repr(tmp_path: Path) -> None:
    config = load(tmp_path, f"twitch:\n  client_id: abc\n  client_secret: {SECRET}\n")
    assert config.client_secret == SECRET
    assert SECRET not in repr(config)
    assert SECRET not in str(config)
    assert "client_id='abc'" in repr(config)
    env_config = load_config(None, env={CLIENT_SECRET_ENV: SECRET}, app_dir=tmp_path)
    assert env_config.client_secret == SECRET
    assert SECRET not in repr(env_config)


def test_config_is_frozen(tmp_path: Path) -> None:
    config = load(tmp_path, "")
    with pytest.raises(AttributeError):
        config.client_id = "x"  # type: ignore[misc]


# --- the reader is total -----------------------------------------------------------------------------

SCHEMA_WORDS = [
    "twitch", "client_id", "client_secret", "endpoints", "helix", "oauth", "eventsub", "database",
    "colors", "mode", "hex_policy", "no_repeat", "min_contrast", "hex_retry_after_hours", "logging",
    "level", "format", "file", "max_bytes", "backup_count", "health_port", "colour",
]  # fmt: skip
YAML_PIECES = [
    *SCHEMA_WORDS, ":", ": ", "\n", "\n  ", "  ", "- ", "[", "]", "{", "}", ",", "'", '"', "#", "&a ", "*a",
    "!!int ", "!!str ", "!x ", "? ", "|", ">", "---", "...", "~", "null", "true", "1", "-1", "2.5", ".inf",
    "http://127.0.0.1/", "https://x/", "~/", "\t", "\\", "<<: ", "%YAML 1.1\n", "2001-13-45", "\x00",
]  # fmt: skip
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20), st.sampled_from(SCHEMA_WORDS)
)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(SCHEMA_WORDS), inner),
    max_leaves=12,
)
junk = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(YAML_PIECES), max_size=40).map("".join),
    documents.map(lambda doc: yaml.safe_dump(doc, allow_unicode=True)),
)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(junk)
def test_random_junk_raises_nothing_but_config_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "colorchanger.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            outcome: Config | ConfigError = load_config(path, env={}, app_dir=Path(directory))
        except ConfigError as error:  # anything else fails the test
            outcome = error
    if isinstance(outcome, ConfigError):
        assert outcome.problems
        assert all(isinstance(p, Problem) and p.message for p in outcome.problems)
    else:
        assert isinstance(outcome, Config)
