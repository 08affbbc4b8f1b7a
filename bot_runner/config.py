"""The runner's settings: found, read and checked once, then passed down as one frozen value.

Reading never stops at the first mistake: the YAML is composed into nodes (which keep their line
numbers) and walked against the schema, so one ``ConfigError`` lists everything wrong with a file,
each problem with its key path and line. The client secret's value never appears in any message.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Literal, TypeVar, cast
from urllib.parse import urlsplit

import click
import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError

from colorchanger_ext.settings import ColorSettings

DEFAULT_HELIX: Final = "https://api.twitch.tv/helix/"
DEFAULT_OAUTH: Final = "https://id.twitch.tv/"
DEFAULT_EVENTSUB: Final = "wss://eventsub.wss.twitch.tv/ws"

CONFIG_ENV: Final = "COLORCHANGER_CONFIG"
CLIENT_ID_ENV: Final = "COLORCHANGER_CLIENT_ID"
CLIENT_SECRET_ENV: Final = "COLORCHANGER_CLIENT_SECRET"

APP_NAME: Final = "colorchanger"
CWD_CONFIG_NAME: Final = "colorchanger.yaml"
"""Looked for in the working directory."""
APP_CONFIG_NAME: Final = "config.yaml"
"""Looked for in the per-user app directory (``click.get_app_dir("colorchanger")``)."""
DATABASE_NAME: Final = "colorchanger.sqlite3"
CLIENT_ID_PLACEHOLDER: Final = "your-client-id"
"""What config.example.yaml ships as the client id; loads fine, but cannot talk to Twitch."""
TWITCH_CONSOLE: Final = "https://dev.twitch.tv/console"

LogFormat = Literal["text", "json"]
LOG_FORMATS: Final[tuple[LogFormat, ...]] = ("text", "json")
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")

_TOP_KEYS: Final = ("twitch", "database", "colors", "logging", "health_port", "restore_colour_on_exit")
_TWITCH_KEYS: Final = ("client_id", "client_secret", "endpoints")
_ENDPOINT_KEYS: Final = ("helix", "oauth", "eventsub")
_COLOR_KEYS: Final = (
    "mode",
    "hex_policy",
    "no_repeat",
    "min_contrast",
    "hex_retry_after_hours",
    "readability",
    "rainbow_step",
)
_LOGGING_KEYS: Final = ("level", "format", "file", "max_bytes", "backup_count")
_ALL_PATHS: Final = (
    *_TOP_KEYS,
    *(f"twitch.{key}" for key in _TWITCH_KEYS),
    *(f"twitch.endpoints.{key}" for key in _ENDPOINT_KEYS),
    *(f"colors.{key}" for key in _COLOR_KEYS),
    *(f"logging.{key}" for key in _LOGGING_KEYS),
)
_NULL_TAG: Final = "tag:yaml.org,2002:null"
_SHOWN_MAX: Final = 40
_SECRET_TOKEN = re.compile(r"[\w.+/=~-]{8,}")
_KEY_LIKE = re.compile(r"[A-Za-z_-]{1,24}")  # a (misspelt) key name, not a key with a value glued on


# --- the settings ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where Twitch is: its real servers by default, or a mock / fake on loopback for tests."""

    helix: str = DEFAULT_HELIX
    oauth: str = DEFAULT_OAUTH
    eventsub: str = DEFAULT_EVENTSUB


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    """How the runner logs: level, line format, and an optional rotated file."""

    level: str = "INFO"
    format: LogFormat = "text"
    file: Path | None = None
    max_bytes: int = 10 * 1024 * 1024
    backup_count: int = 5


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the runner is told, built once by ``load_config`` and passed down explicitly."""

    source: Path | None
    """The file it came from; None when no config file exists."""
    client_id: str | None
    client_secret: str | None = field(repr=False)
    database: Path
    colors: ColorSettings
    logging: LoggingConfig
    endpoints: Endpoints
    health_port: int | None = None
    restore_colour_on_exit: bool = False
    """Put each user's own colour back when they are removed or disabled, and when the runner stops."""
    searched: tuple[Path, ...] = field(default=(), repr=False, compare=False)
    """Where a config file was looked for, first first: messages name the file to create."""

    def require_client_id(self) -> str:
        """The client id, or a ConfigError saying exactly where to put one (commands that talk to Twitch)."""
        if self.client_id and self.client_id != CLIENT_ID_PLACEHOLDER:
            return self.client_id
        if self.client_id == CLIENT_ID_PLACEHOLDER:
            where = f"twitch.client_id in {self.source}" if self.source else CLIENT_ID_ENV
            message = (
                f"no Twitch client id: {where} is still the example's {CLIENT_ID_PLACEHOLDER!r}; "
                f"put your application's client id from {TWITCH_CONSOLE} there"
            )
        elif self.source is not None:
            message = f"no Twitch client id: set twitch.client_id in {self.source} (or {CLIENT_ID_ENV})"
        else:
            target = self.searched[0] if self.searched else Path(CWD_CONFIG_NAME)
            message = (
                f"no Twitch client id: create {target} containing these 2 lines\n"
                f"twitch:\n"
                f'  client_id: "{CLIENT_ID_PLACEHOLDER}"\n'
                f"with your application's client id from {TWITCH_CONSOLE} in place of "
                f"{CLIENT_ID_PLACEHOLDER} (or set {CLIENT_ID_ENV})"
            )
        raise ConfigError([Problem("", None, message, None)])


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the settings, located well enough to fix without guessing."""

    path: str
    """Dotted key path ("colors.no_repeat"); "" for the file as a whole."""
    line: int | None
    """1-based line in ``file``; None when not known (an env var, a file that cannot be read)."""
    message: str
    file: Path | None = None

    def __str__(self) -> str:
        where = str(self.file) if self.file is not None else ""
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        return ": ".join(part for part in (where, self.path, self.message) if part)


class ConfigError(Exception):
    """Every problem found at once, one per line, so a single edit can fix them all."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


# --- finding the file --------------------------------------------------------------------------------


def _app_dir(app_dir: Path | None) -> Path:
    """The per-user directory click picks for this OS, unless a test passes its own."""
    return app_dir if app_dir is not None else Path(click.get_app_dir(APP_NAME))


def _implicit_locations(cwd: Path | None, app_dir: Path | None) -> list[Path]:
    """The places looked in when neither --config nor the env var names a file."""
    return [(cwd or Path.cwd()) / CWD_CONFIG_NAME, _app_dir(app_dir) / APP_CONFIG_NAME]


def search_locations(
    *, env: Mapping[str, str] = os.environ, cwd: Path | None = None, app_dir: Path | None = None
) -> list[Path]:
    """Where find_config looks without --config, in order: for `--help` text and error messages."""
    named = [Path(env[CONFIG_ENV]).expanduser()] if env.get(CONFIG_ENV) else []
    return named + _implicit_locations(cwd, app_dir)


def _must_exist(path: Path, given_by: str) -> Path:
    """A config file the user named: missing is an error, unlike the places merely looked in."""
    path = path.expanduser()
    if not path.exists():
        raise ConfigError([Problem("", None, f"config file not found (given by {given_by})", path)])
    if path.is_dir():
        raise ConfigError(
            [Problem("", None, f"is a directory, not a config file (given by {given_by})", path)]
        )
    return path


def find_config(
    explicit: Path | None,
    *,
    env: Mapping[str, str] = os.environ,
    cwd: Path | None = None,
    app_dir: Path | None = None,
) -> Path | None:
    """The file to read: --config, else $COLORCHANGER_CONFIG, else ./colorchanger.yaml, else the app dir."""
    if explicit is not None:
        return _must_exist(explicit, "--config")
    if env.get(CONFIG_ENV):
        return _must_exist(Path(env[CONFIG_ENV]), f"${CONFIG_ENV}")
    return next((path for path in _implicit_locations(cwd, app_dir) if path.is_file()), None)


# --- loading -----------------------------------------------------------------------------------------


def load_config(
    path: Path | None,
    *,
    env: Mapping[str, str] = os.environ,
    app_dir: Path | None = None,
    cwd: Path | None = None,
) -> Config:
    """Read and check a config file (None: all defaults); the client id/secret env vars override it."""
    searched = tuple(search_locations(env=env, cwd=cwd, app_dir=app_dir))
    if path is None:
        config = Config(
            source=None,
            client_id=None,
            client_secret=None,
            database=_app_dir(app_dir) / DATABASE_NAME,
            colors=ColorSettings(database=_app_dir(app_dir) / DATABASE_NAME),
            logging=LoggingConfig(),
            endpoints=Endpoints(),
            searched=searched,
        )
    else:
        config = _load_file(Path(os.path.abspath(path.expanduser())), env, searched)
    return _with_env(config, env)


def _with_env(config: Config, env: Mapping[str, str]) -> Config:
    """Env vars win over the file, so a secret can stay out of it entirely."""
    return replace(
        config,
        client_id=env.get(CLIENT_ID_ENV, "").strip() or config.client_id,
        client_secret=env.get(CLIENT_SECRET_ENV, "").strip() or config.client_secret,
    )


def _load_file(source: Path, env: Mapping[str, str], searched: tuple[Path, ...]) -> Config:
    """Read one file; every problem in it is raised together as one ConfigError."""
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise ConfigError([Problem("", None, f"cannot read: {exc.strerror or exc}", source)]) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError([Problem("", line, "not UTF-8 text", source)]) from None
    reader = _Reader(source)
    config = _build(reader, reader.compose(text), source, searched)
    if reader.problems:
        secrets = _secret_candidates(text, env)
        problems = sorted(reader.problems, key=lambda p: p.line or 0)
        raise ConfigError([_redact(problem, secrets) for problem in problems])
    return config


def _build(reader: _Reader, root: Node | None, source: Path, searched: tuple[Path, ...]) -> Config:
    """Walk the document against the schema; problems are collected in the reader, defaults fill gaps."""
    base = source.parent
    top = reader.section(root, "", _TOP_KEYS)
    twitch = top.child("twitch", _TWITCH_KEYS)
    database = top.read("database", base / DATABASE_NAME, _path(base))
    return Config(
        source=source,
        client_id=twitch.read("client_id", None, _or_null(_text)),
        client_secret=twitch.read("client_secret", None, _or_null(_text)),
        database=database,
        colors=_read_colors(top.child("colors", _COLOR_KEYS), database),
        logging=_read_logging(top.child("logging", _LOGGING_KEYS), base),
        endpoints=_read_endpoints(twitch.child("endpoints", _ENDPOINT_KEYS)),
        health_port=top.read("health_port", None, _or_null(_whole(1, 65535))),
        restore_colour_on_exit=top.read("restore_colour_on_exit", False, _bool),
        searched=searched,
    )


def _read_endpoints(section: _Section) -> Endpoints:
    """TLS everywhere except loopback, so a token can never cross a network in clear text."""
    return Endpoints(
        helix=section.read("helix", DEFAULT_HELIX, _url("https", "http", slash=True)),
        oauth=section.read("oauth", DEFAULT_OAUTH, _url("https", "http", slash=True)),
        eventsub=section.read("eventsub", DEFAULT_EVENTSUB, _url("wss", "ws", slash=False)),
    )


def _read_logging(section: _Section, base: Path) -> LoggingConfig:
    """Logging settings; a relative log file lives beside the config file."""
    defaults = LoggingConfig()
    return LoggingConfig(
        level=section.read("level", defaults.level, _choice(LOG_LEVELS, str.upper)),
        format=cast(LogFormat, section.read("format", defaults.format, _choice(LOG_FORMATS, str.lower))),
        file=section.read("file", None, _or_null(_path(base))),
        max_bytes=section.read("max_bytes", defaults.max_bytes, _whole(0)),
        backup_count=section.read("backup_count", defaults.backup_count, _whole(0)),
    )


def _read_colors(section: _Section, database: Path) -> ColorSettings:
    """Types are checked here, values by ColorSettings itself, one key at a time to blame the right line."""
    given: dict[str, Any] = {
        "mode": section.read("mode", None, _lower_text),
        "hex_policy": section.read("hex_policy", None, _lower_text),
        "no_repeat": section.read("no_repeat", None, _whole()),
        "min_contrast": section.read("min_contrast", None, _number()),
        "hex_retry_after_hours": section.read("hex_retry_after_hours", None, _number(minimum=0)),
        "readability": section.read("readability", None, _lower_text),
        "rainbow_step": section.read("rainbow_step", None, _whole()),
    }
    accepted: dict[str, Any] = {}
    for key, value in given.items():
        if value is None:  # absent, or already reported
            continue
        name, value = ("hex_retry_after", value * 3600.0) if key == "hex_retry_after_hours" else (key, value)
        try:
            ColorSettings(database=database, **{name: value})
        except ValueError as exc:
            section.report(key, str(exc).removeprefix(f"{name} "))
        else:
            accepted[name] = value
    return ColorSettings(database=database, **accepted)


# --- walking the YAML --------------------------------------------------------------------------------


class _Invalid(Exception):
    """A value that does not fit its key; the message says why, without the key path."""


T = TypeVar("T")
V = TypeVar("V")
Converter = Callable[[Node, object], V]
"""Turns a value node (and, for scalars, its constructed value) into a setting, or raises _Invalid."""


def _line(node: Node | None) -> int | None:
    """Human (1-based) line of a node."""
    return node.start_mark.line + 1 if node is not None else None


def _child_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Reader:
    """Composes a document and collects problems as sections and values are read from it."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self._constructor = SafeConstructor()

    def report(self, path: str, node: Node | None, message: str) -> None:
        self.problems.append(Problem(path, _line(node), message, self.file))

    def compose(self, text: str) -> Node | None:
        """The node tree (None for an empty document); malformed YAML becomes one problem."""
        try:
            loader = yaml.SafeLoader(text)
        except ReaderError as exc:
            self._yaml_problem(exc, text)
            return None
        try:
            return loader.get_single_node()
        except yaml.YAMLError as exc:
            self._yaml_problem(exc, text)
        except RecursionError:
            self.report("", None, "not readable: nested too deeply")
        finally:
            loader.dispose()
        return None

    def _yaml_problem(self, exc: yaml.YAMLError, text: str) -> None:
        """Position and reason only: str(exc) quotes the offending line, which may hold the secret."""
        line: int | None = None
        message = "not valid YAML"
        if isinstance(exc, ReaderError):
            line = text.count("\n", 0, exc.position) + 1
            message = f"not valid YAML: character #x{exc.character:04X} is not allowed"
        elif isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
            line = exc.problem_mark.line + 1
            context = f" ({exc.context})" if exc.context else ""
            message = f"not valid YAML: {exc.problem} at column {exc.problem_mark.column + 1}{context}"
        self.problems.append(Problem("", line, message, self.file))

    def construct(self, node: Node) -> object:
        """A scalar's Python value (collections are returned as their node, for messages to name)."""
        if not isinstance(node, ScalarNode):
            return node
        try:
            return self._constructor.construct_object(node)
        except yaml.YAMLError as exc:
            reason = getattr(exc, "problem", None) or "bad YAML tag"
            raise _Invalid(f"cannot read this value: {reason}") from None
        except Exception:  # constructors are not total ("!!int" alone: IndexError); texts may quote the value
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise _Invalid(f"cannot read this value as {tag}") from None

    def section(self, node: Node | None, path: str, keys: Collection[str]) -> _Section:
        """The known keys of a mapping; unknown, duplicate and non-name keys are reported."""
        section = _Section(self, path, {}, node)
        if node is None or (isinstance(node, ScalarNode) and node.tag == _NULL_TAG):
            return section  # absent or empty: all defaults
        if not isinstance(node, MappingNode):
            shown = _shown(node, self._safe_construct(node))
            self.report(path, node, f"must be a mapping with keys {', '.join(keys)}; not {shown}")
            return section
        first_seen: dict[str, int | None] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.report(path, key_node, f"keys must be names, not {_shown(key_node, key_node)}")
                continue
            key = key_node.value
            if key in first_seen:
                self.report(path, key_node, f"duplicate key {_quote(key)} (first at line {first_seen[key]})")
                continue
            first_seen[key] = _line(key_node)
            if key in keys:
                section.nodes[key] = value_node
            else:
                self.report(path, key_node, _unknown_key(key, keys, path))
        return section

    def _safe_construct(self, node: Node) -> object:
        try:
            return self.construct(node)
        except _Invalid:
            return node


@dataclass
class _Section:
    """One mapping of the document: its known keys' value nodes, read one typed key at a time."""

    reader: _Reader
    path: str
    nodes: dict[str, Node]
    node: Node | None

    def report(self, key: str, message: str) -> None:
        self.reader.report(_child_path(self.path, key), self.nodes.get(key, self.node), message)

    def child(self, key: str, keys: Collection[str]) -> _Section:
        return self.reader.section(self.nodes.get(key), _child_path(self.path, key), keys)

    def read(self, key: str, default: T, convert: Converter[V]) -> V | T:
        """The converted value, or the default when the key is absent or wrong (then reported)."""
        node = self.nodes.get(key)
        if node is None:
            return default
        try:
            return convert(node, self.reader.construct(node))
        except _Invalid as exc:
            self.report(key, str(exc))
            return default


def _unknown_key(key: str, keys: Collection[str], path: str) -> str:
    """Name the likely intended key: a sibling spelt alike, or the same name elsewhere in the schema."""
    close = difflib.get_close_matches(key, list(keys), n=1)
    if close:
        return f"unknown key {_quote(key)} (did you mean {close[0]!r}?)"
    elsewhere = [p for p in _ALL_PATHS if p.rsplit(".", 1)[-1] == key and p != _child_path(path, key)]
    if elsewhere:
        return f"unknown key {_quote(key)} here (did you mean {elsewhere[0]!r}?)"
    return f"unknown key {_quote(key)} (known keys: {', '.join(keys)})"


def _shown(node: Node, value: object) -> str:
    """How a wrong value is named in a message: collections by kind, scalars quoted and cut short."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if value is None:
        return "null"
    shown = _quote(str(node.value))
    return f"{shown} (a boolean to YAML)" if isinstance(value, bool) else shown


def _quote(text: str) -> str:
    """File text as a message shows it: quoted, escaped, cut short; hidden if it may hold the secret."""
    if "secret" in text.lower() and not _KEY_LIKE.fullmatch(text):  # "client_secret:xyz" is one scalar
        return "<hidden: mentions the secret>"
    return repr(text if len(text) <= _SHOWN_MAX else text[: _SHOWN_MAX - 3] + "...")


def _kind(node: Node, value: object) -> str:
    """A value's kind without its content, for keys whose value must not be echoed."""
    if isinstance(value, bool):
        return "a boolean (put it in quotes if you mean the word)"
    return _shown(node, value) if not isinstance(node, ScalarNode) or value is None else "this value"


# --- converters: node -> setting, or _Invalid --------------------------------------------------------


def _or_null(convert: Converter[V]) -> Converter[V | None]:
    """Allows null (where the example file shows null) meaning 'not set'."""

    def convert_or_null(node: Node, value: object) -> V | None:
        return None if value is None else convert(node, value)

    return convert_or_null


def _text(node: Node, value: object) -> str:
    """Any non-empty scalar as written (a numeric client id stays as typed); never echoes the value."""
    if not isinstance(node, ScalarNode) or value is None or isinstance(value, bool):
        raise _Invalid(f"must be text, not {_kind(node, value)}")
    text = str(node.value).strip()
    if not text:
        raise _Invalid("must not be empty")
    return text


def _bool(node: Node, value: object) -> bool:
    """true or false (YAML's yes/no/on/off too); not a quoted "true", not 1."""
    if not isinstance(value, bool):
        raise _Invalid(f"must be true or false, not {_shown(node, value)}")
    return value


def _lower_text(node: Node, value: object) -> str:
    """Text compared case-insensitively (colour mode names)."""
    return _text(node, value).lower()


def _choice(options: Sequence[str], normalise: Callable[[str], str]) -> Converter[str]:
    """One of a fixed set of words, in any case."""

    def convert(node: Node, value: object) -> str:
        text = normalise(_text(node, value)) if isinstance(value, str) else ""
        if text in options:
            return text
        close = difflib.get_close_matches(text, list(options), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise _Invalid(f"must be one of {', '.join(options)}, not {_shown(node, value)}{hint}")

    return convert


def _whole(minimum: int | None = None, maximum: int | None = None) -> Converter[int]:
    """A whole number, optionally bounded; booleans and 2.0 are not whole numbers."""

    def convert(node: Node, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid(f"must be a whole number, not {_shown(node, value)}")
        too_low = minimum is not None and value < minimum
        if too_low or (maximum is not None and value > maximum) or value.bit_length() > 63:
            raise _Invalid(f"must be {_bounds(minimum, maximum)}, not {_shown(node, value)}")
        return value

    return convert


def _number(minimum: float | None = None) -> Converter[float]:
    """A finite number (whole or not), optionally with a lower bound; booleans are not numbers."""

    def convert(node: Node, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Invalid(f"must be a number, not {_shown(node, value)}")
        try:
            number = float(value)
        except OverflowError:  # a 4000-digit hex int
            number = math.inf
        if not math.isfinite(number):
            raise _Invalid(f"must be a finite number, not {_shown(node, value)}")
        if minimum is not None and number < minimum:
            raise _Invalid(f"must be {_bounds(minimum, None)}, not {_shown(node, value)}")
        return number

    return convert


def _bounds(minimum: float | None, maximum: float | None) -> str:
    """The allowed range in words; an unbounded whole number still has to fit in 64 bits."""
    if minimum is not None and maximum is not None:
        return f"between {minimum} and {maximum}"
    if minimum is not None:
        return f"at least {minimum}"
    return f"at most {maximum}" if maximum is not None else "a reasonable size"


def _path(base: Path) -> Converter[Path]:
    """A file path; relative ones are relative to the config file's directory, ~ is expanded."""

    def convert(node: Node, value: object) -> Path:
        try:
            return base / Path(_text(node, value)).expanduser()
        except RuntimeError:  # "~someone" with no such user
            raise _Invalid(f"cannot expand the ~ in {_shown(node, value)}") from None

    return convert


def _url(secure: str, plain: str, *, slash: bool) -> Converter[str]:
    """An absolute URL using the TLS scheme, or the plain one for a loopback host only."""

    def convert(node: Node, value: object) -> str:
        text = _text(node, value)
        problem = _url_problem(text, secure, plain)
        if problem:
            raise _Invalid(problem)
        return text if not slash or text.endswith("/") else text + "/"

    return convert


def _url_problem(url: str, secure: str, plain: str) -> str | None:
    """Why an endpoint URL is refused, or None."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError:
        return f"not a valid URL: {url!r}"
    scheme = parts.scheme.lower()
    if scheme not in (secure, plain) or not host:
        return f"must be an absolute {secure}:// URL ({plain}:// for a loopback host), not {url!r}"
    if parts.query or parts.fragment:
        return f"must not have a query or fragment: {url!r}"
    if scheme == plain and not _is_loopback(host):
        return f"refusing non-TLS endpoint {url}: only loopback hosts may skip TLS"
    return None


def _is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1: traffic that never leaves the machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- keeping the secret out of messages --------------------------------------------------------------


def _secret_candidates(text: str, env: Mapping[str, str]) -> set[str]:
    """What may be the client secret: long tokens after "client_secret" on a line, and the env var."""
    found = {env[CLIENT_SECRET_ENV].strip()} if env.get(CLIENT_SECRET_ENV, "").strip() else set()
    for line in text.splitlines():
        _, marker, rest = line.partition("client_secret")
        if marker:
            found.update(_SECRET_TOKEN.findall(rest))
    return found


def _redact(problem: Problem, secrets: Iterable[str]) -> Problem:
    """The problem with every secret candidate blanked out (belt and braces: messages avoid values)."""
    message, path = problem.message, problem.path
    for secret in secrets:
        message, path = message.replace(secret, "<hidden>"), path.replace(secret, "<hidden>")
    return Problem(path, problem.line, message, problem.file)
