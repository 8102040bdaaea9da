"""The settings: defaults under the config home (config_home.py), a TOML config file, `.env`
and the environment (prefix LINUX_MCP_); every field is in .env.example. settings_sources.py
resolves them, for the server and the CLI alike."""

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from mcp_linux_infra.config_home import home
from mcp_linux_infra.notify.events import DEFAULT_EVENTS, EVENTS
from mcp_linux_infra.target_names import ACTION_USER, READER_USER

# A target's user name (useradd's rule, shortened): never read as an option or a path.
_USER = r"^[a-z_][a-z0-9_-]{0,31}$"
# A systemd unit name as diagnose_system sends it (the target checks it again).
_UNIT = re.compile(r"[A-Za-z0-9][A-Za-z0-9@._:-]{0,255}")
_TTL = re.compile(r"^\s*(\d+)\s*([smh]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}
# An operator's principal in the targets' allowed_signers: the target's own pattern
# (system/lib/mcp_infra_target/actions/approval.py), no wildcard, never read as an option.
PRINCIPAL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$"
_HOSTNAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")


def _is_ip(text: str, version: int | None = None) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return version is None or address.version == version


def _port(entry: str, text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"{entry!r}: the port must be a number from 1 to 65535")
    return int(text)


def split_allowed_host(entry: str) -> tuple[str, int | None]:
    """`NAME`, `NAME:PORT`, `[IPV6]` or `[IPV6]:PORT` -> (name, port or None); ValueError for
    anything else (a wildcard, a scheme, a path)."""
    text = entry.strip()
    if text.startswith("["):
        name, bracket, rest = text[1:].partition("]")
        if not bracket or not _is_ip(name, 6):
            raise ValueError(f"{entry!r}: not a bracketed IPv6 address")
        if rest and not rest.startswith(":"):
            raise ValueError(f"{entry!r}: expected [IPV6]:PORT")
        return name, _port(entry, rest[1:]) if rest else None
    name, colon, port_text = text.partition(":")
    if not _is_ip(name) and not _HOSTNAME.fullmatch(name):
        raise ValueError(f"{entry!r}: not a host name, IPv4 address or [IPv6] address")
    return name, _port(entry, port_text) if colon else None




def parse_ttl(text: str) -> int:
    """`900`, `900s`, `15m`, `1h` -> seconds (at least one)."""
    match = _TTL.match(text)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"not a duration: {text!r} (examples: 900s, 15m, 1h)")
    return int(match.group(1)) * _UNITS[match.group(2)]

def check_database_url(url: str) -> str:
    """A PostgreSQL connection URL (postgresql://...); no message ever shows the URL, which
    may hold a password."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ValueError("the database URL is not a URL") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError("the database URL must start with postgresql:// (PostgreSQL is the "
                         "shared store; without it, each server keeps SQLite files)")
    if not url.isprintable() or " " in url:
        raise ValueError("the database URL may not hold spaces or control characters")
    return url


def _read_secret(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None


class WebhookSpec(BaseModel):
    """Where a proposal's events are POSTed, in which body, which events (default: all but
    `executing`). The URL is a secret (a chat webhook's path is its key): no message shows it."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048, repr=False)
    format: Literal["json", "slack"] = "json"
    events: list[Literal[tuple(EVENTS)]] | None = Field(None, min_length=1)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - a bad port raises here
        except ValueError:
            raise ValueError("a webhook URL is not a URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("a webhook URL must be http:// or https:// with a host")
        if not url.isprintable() or " " in url:
            raise ValueError("a webhook URL may not hold spaces or control characters")
        return url

    def wants(self, event: str) -> bool:
        return event in (DEFAULT_EVENTS if self.events is None else self.events)


class ConfigFile(TomlConfigSettingsSource):
    """The TOML config file; a relative path in it is relative to the file's directory."""

    def _read_files(self, files, deep_merge: bool = False):
        data = super()._read_files(files, deep_merge=deep_merge)
        if files is None:
            return data
        base = Path(files).parent
        for name, value in data.items():
            if _is_path(name):
                data[name] = ([_relative_to(base, v) for v in value] if isinstance(value, list)
                              else _relative_to(base, value))
        return data


def _relative_to(base: Path, value: object) -> object:
    if isinstance(value, str) and value and not value.startswith("~"):
        return str(base / value)
    return value


def _is_path(name: str) -> bool:
    field = Settings.model_fields.get(name)
    return field is not None and "Path" in str(field.annotation)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LINUX_MCP_", env_file=".env", extra="ignore")

    keys_dir: Path = Field(default_factory=lambda: home().config / "keys",
                           description="Client and operator key pairs")
    lab_dir: Path = Field(default_factory=lambda: home().state / "lab",
                          description="Lab state: bootstrap key, known_hosts, targets")
    lab_cache_dir: Path = Field(
        Path("/var/cache/mcp-linux-infra"), description="Cached lab images (built once)"
    )
    lab_inventory: Path | None = Field(
        None, description="Ansible inventory written by `lab up` (default: LAB_DIR/inventory.ini)"
    )
    lab_name_prefix: str = Field("lab", pattern=r"^[a-z][a-z0-9]{0,15}$")
    lab_port_base: int = Field(2201, ge=1024, le=65000, description="sshd port of the first target")
    lab_mirror: str = Field("http://deb.debian.org/debian", pattern=r"^https?://[^\s]+$",
                            description="Debian mirror for the image")
    lab_boot_timeout: float = Field(180.0, gt=0, description="Seconds to wait for targets to boot")

    # --- the MCP server (issue 4) ---
    inventory: Annotated[list[Path] | None, NoDecode] = Field(
        None, min_length=1,
        description="Ansible inventories (INI or YAML files, or directories of them), "
        "comma-separated; those that exist are read (default: CONFIG/inventory.ini and "
        "LAB_INVENTORY, so the lab's targets are there once `lab up` made them)")
    known_hosts: Path | None = Field(
        None, description="Host keys the server trusts; `hosts trust` appends here (default: "
        "STATE_DIR/known_hosts)")
    host_key_policy: Literal["strict", "accept-new"] = Field(
        "strict", description="strict: refuse unknown host keys; accept-new: record them on first "
        "use (a changed key is always refused)")
    reader_user: str = Field(READER_USER, pattern=_USER,
                             description="Target user of the read-only tier")
    reader_key: Path | None = Field(None, description="Private key of the read-only tier "
                                    "(default: KEYS_DIR/mcp-reader.key); a .pub path: the "
                                    "ssh-agent key equal to it")
    reader_key_passphrase_file: Path | None = Field(
        None, description="File holding the passphrase of READER_KEY (mode 600, ours); "
        "without it a protected key is taken from ssh-agent")
    pra_user: str = Field(ACTION_USER, pattern=_USER, description="Target user of the action tier")
    pra_key: Path | None = Field(None, description="Private key of the action tier "
                                 "(default: KEYS_DIR/pra-exec.key); a .pub path: the "
                                 "ssh-agent key equal to it")
    pra_key_passphrase_file: Path | None = Field(
        None, description="File holding the passphrase of PRA_KEY (mode 600, ours); "
        "without it a protected key is taken from ssh-agent")
    ssh_config: Path | None = Field(
        None, description="OpenSSH client config whose HostName, Port, User (of jump hosts), "
        "ProxyJump and ProxyCommand apply (default: ~/.ssh/config if it exists; /dev/null: "
        "none)")
    state_dir: Path = Field(default_factory=lambda: home().state,
                            description="SQLite state (refused commands, proposals)")
    connect_timeout: float = Field(5.0, gt=0, description="Seconds for TCP connect + SSH handshake")
    command_timeout: float = Field(60.0, gt=0, description="Client-side deadline per request; the "
                                   "target enforces its own, shorter, per-command timeouts")
    keepalive_interval: int = Field(15, ge=0, description="SSH keepalive seconds (0: off)")
    output_cap_bytes: int = Field(4 * 1024 * 1024, ge=1024,
                                  description="Most bytes read back per request (stdout + stderr)")
    fanout_concurrency: int = Field(16, ge=1, le=256, description="Hosts contacted at once")
    reader_sessions: int = Field(4, ge=0, le=8, description="mcp:session channels kept open "
                                 "per host for the read-only tier (0: a channel per request)")
    policy_cache_ttl: float = Field(300.0, ge=0, description="Seconds a host's policy is cached")
    key_services: Annotated[list[str], NoDecode] = Field(
        ["ssh", "cron", "rsyslog", "systemd-journald"],
        description="Services diagnose_system checks on every host, comma-separated (a host "
        "or group var mcp_key_services adds more)")
    http_host: str = Field("127.0.0.1", description="Bind address of `serve --transport http`")
    http_port: int = Field(8765, ge=1, le=65535, description="Port of `serve --transport http`")
    http_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        [], description="More names clients may use for the HTTP server in Host and Origin "
        "(NAME on the bind port, or NAME:PORT), comma-separated; the bind address itself and, "
        "on loopback, localhost are always allowed")
    tokens_file: Path = Field(
        default_factory=lambda: home().config / "tokens.json",
        description="Bearer tokens of the HTTP transport (hashed), written by `mcp-linux-infra "
        "tokens new|revoke`; when it exists, every request needs one of its tokens")
    http_tls_cert: Path | None = Field(None, description="PEM certificate (chain) the HTTP "
                                       "transport serves HTTPS with")
    http_tls_key: Path | None = Field(None, description="PEM private key of HTTP_TLS_CERT")
    rate_limit_per_minute: float = Field(120.0, gt=0, description="Sustained requests per token")
    rate_limit_burst: int = Field(30, ge=1, description="Requests a token may send at once")
    audit_log: Path | None = Field(None, description="Audit log, JSON lines (default: "
                                   "STATE_DIR/audit.jsonl)")

    # --- approvals (issue 5) ---
    operator_key: Path | None = Field(
        None, description="The operator's signing key, used by `approvals approve` only, never "
        "by the server (default: KEYS_DIR/operator.key; a .pub path signs through ssh-agent)")
    approver: str = Field("operator", pattern=PRINCIPAL_PATTERN,
                          description="The operator's principal in the targets' allowed_signers")
    approval_ttl: str = Field("15m", description="Default lifetime of an approval (900s, 15m, "
                              "1h); capped at the host's max_window_seconds")
    proposal_ttl: float = Field(86400.0, gt=0, description="Seconds a proposal may wait for "
                                "approval before it expires")

    # --- team approvals (issue 11) ---
    console_origin: str = Field(
        "http://localhost:8766", pattern=r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$",
        description="The approval console's public origin (scheme://host[:port], no path), as "
        "operators' browsers reach it; links in tool answers and notifications start with it")
    console_bind: str = Field("127.0.0.1", description="Bind address of `mcp-linux-infra "
                              "console`; a non-loopback address needs TLS (or a proxy)")
    console_port: int = Field(8766, ge=1, le=65535, description="Port of the console")
    console_rp_id: str | None = Field(
        None, description="The WebAuthn RP ID: operators' passkey key lines are bound to it "
        "(default: CONSOLE_ORIGIN's host)")
    console_tls_cert: Path | None = Field(None, description="PEM certificate (chain) the "
                                          "console serves HTTPS with")
    console_tls_key: Path | None = Field(None, description="PEM private key of the certificate")
    console_allow_plaintext: bool = Field(
        False, description="Allow a non-loopback bind without TLS (a TLS-terminating proxy "
        "in front, on a trusted network)")
    console_trusted_proxies: Annotated[list[str], NoDecode] = Field(
        [], description="IP addresses of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto the console believes, comma-separated")
    console_session_seconds: int = Field(43200, ge=60, le=30 * 86400,
                                         description="Lifetime of a console login")
    console_enroll_seconds: int = Field(86400, ge=60, le=30 * 86400,
                                        description="Lifetime of an enrollment link")


    # --- notifications (issue 11) ---
    webhooks: list[WebhookSpec] = Field(
        [], description='Webhooks, JSON: [{"url": "https://...", "format": "json"|"slack", '
        '"events": [...]}]; docs/NOTIFICATIONS.md')
    webhook_queue_size: int = Field(100, ge=1, le=100000, description="Events waiting per "
                                    "webhook; when full, the oldest is dropped (and audited)")
    webhook_timeout: float = Field(10.0, gt=0, le=300, description="Seconds each attempt may "
                                   "take to connect, send and be answered")
    webhook_attempts: int = Field(5, ge=1, le=20, description="Attempts per event before it "
                                  "is given up (and audited)")
    webhook_backoff: float = Field(1.0, gt=0, le=300, description="Seconds before the first "
                                   "retry, doubled for each next one (at most 300); a longer "
                                   "Retry-After from the receiver wins")
    webhook_poll_interval: float = Field(5.0, gt=0, le=3600, description="Seconds between "
                                         "the server's looks for changes other processes made "
                                         "(the operator CLI); its own go out at once")
    expiry_sweep_interval: float = Field(60.0, gt=0, le=3600, description="Seconds between "
                                         "the server's sweeps for proposals that expired")

    # --- several servers, one store (issue 13) ---
    database_url: str | None = Field(
        None, repr=False, description="postgresql://USER:PASSWORD@HOST/DB: the proposals, "
        "approvals, operators and refused commands in PostgreSQL, shared by every server, "
        "the CLI and the console that name it (default: SQLite files in STATE_DIR); a secret")
    database_url_file: Path | None = Field(
        None, description="A file (mode 0600) holding DATABASE_URL, so that no environment "
        "holds its password")

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment, then `.env`, then the config file (its path is
        the class's `toml_file`: settings_sources.settings_class)."""
        return init_settings, env_settings, dotenv_settings, ConfigFile(settings_cls)

    @field_validator("*", mode="before")
    @classmethod
    def _paths(cls, value: object, info: ValidationInfo) -> object:
        if _is_path(info.field_name) and isinstance(value, str):
            if not value.strip():
                raise ValueError("a path may not be empty (leave the setting out for its "
                                 "default)")
            return str(Path(value).expanduser())
        return value

    @field_validator("http_host", "console_bind")
    @classmethod
    def _bind_address(cls, value: str) -> str:
        if not _is_ip(value) and not _HOSTNAME.fullmatch(value):
            raise ValueError(f"{value!r}: not an IP address or a host name")
        return value

    @field_validator("inventory", "key_services", "http_allowed_hosts",
                     "console_trusted_proxies", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("key_services")
    @classmethod
    def _unit_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not _UNIT.fullmatch(name):
                raise ValueError(f"{name!r}: not a systemd unit name")
        return names

    @field_validator("http_allowed_hosts")
    @classmethod
    def _host_names(cls, names: list[str]) -> list[str]:
        for name in names:
            split_allowed_host(name)
        return names

    @field_validator("console_trusted_proxies")
    @classmethod
    def _proxy_addresses(cls, addresses: list[str]) -> list[str]:
        for address in addresses:
            if not _is_ip(address):
                raise ValueError(f"{address!r}: a trusted proxy is an IP address")
        return addresses

    @field_validator("console_rp_id")
    @classmethod
    def _rp_id(cls, value: str | None) -> str | None:
        if value is not None and (_is_ip(value) or not _HOSTNAME.fullmatch(value)):
            raise ValueError(f"{value!r}: the RP ID is a host name (never an IP address)")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is not None:
            check_database_url(value)
        return value

    @field_validator("approval_ttl")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_ttl(value)
        return value

    @model_validator(mode="after")
    def _default_keys(self) -> "Settings":
        if self.known_hosts is None:
            self.known_hosts = self.state_dir / "known_hosts"
        if self.audit_log is None:
            self.audit_log = self.state_dir / "audit.jsonl"
        if self.lab_inventory is None:
            self.lab_inventory = self.lab_dir / "inventory.ini"
        if self.inventory is None:
            self.inventory = [home().config / "inventory.ini", self.lab_inventory]
        if self.ssh_config is None:
            self.ssh_config = Path("~/.ssh/config").expanduser()
        if self.reader_key is None:
            self.reader_key = self.keys_dir / "mcp-reader.key"
        if self.pra_key is None:
            self.pra_key = self.keys_dir / "pra-exec.key"
        if self.operator_key is None:
            self.operator_key = self.keys_dir / "operator.key"
        origin_host = urlsplit(self.console_origin).hostname
        if self.console_rp_id is None:
            self.console_rp_id = origin_host
        elif origin_host != self.console_rp_id and \
                not origin_host.endswith("." + self.console_rp_id):
            raise ValueError("LINUX_MCP_CONSOLE_RP_ID must be LINUX_MCP_CONSOLE_ORIGIN's host or a parent domain "
                             "of it (WebAuthn's rule)")
        if (self.http_tls_cert is None) != (self.http_tls_key is None):
            raise ValueError("LINUX_MCP_HTTP_TLS_CERT and LINUX_MCP_HTTP_TLS_KEY go together")
        if self.database_url_file is not None:
            if self.database_url is not None:
                raise ValueError("LINUX_MCP_DATABASE_URL and LINUX_MCP_DATABASE_URL_FILE: "
                                 "set one of them")
            try:
                self.database_url = check_database_url(_read_secret(self.database_url_file))
            except ValueError as exc:
                raise ValueError(f"LINUX_MCP_DATABASE_URL_FILE: {exc}") from None
        if (self.console_tls_cert is None) != (self.console_tls_key is None):
            raise ValueError("LINUX_MCP_CONSOLE_TLS_CERT and LINUX_MCP_CONSOLE_TLS_KEY go "
                             "together")
        return self
