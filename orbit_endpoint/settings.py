"""Endpoint configuration: flags > ``ORBIT_ENDPOINT_*`` environment > defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from orbit_protocol import naming
from orbit_protocol.headers import DEFAULT_MAX_BODY, HARD_MAX_BODY
from orbit_protocol.urls import mask_urls, split_urls

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:35672/orbit"
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


def default_state_dir() -> Path:
    return Path.home() / ".local" / "state" / "orbit" / "endpoints"


class EndpointSettings(BaseSettings):
    """Everything an endpoint process needs to know."""

    model_config = SettingsConfigDict(
        env_prefix="ORBIT_ENDPOINT_", extra="forbid", populate_by_name=True
    )

    name: str = Field(description="endpoint name; its queue is orbit.ep.<name>")
    url: SecretStr = Field(
        default=SecretStr(DEFAULT_URL),
        description="AMQP(S) URL with user, password and vhost; several nodes of a cluster"
        " comma-separated (later entries may omit user and vhost)",
    )
    plugins: list[str] = Field(
        default_factory=lambda: ["sysinfo"],
        description="entry-point names (group orbit.plugins) or module:Class paths",
    )
    plugin_settings: dict[str, dict[str, Any]] = Field(default_factory=dict)
    pools: list[str] = Field(default_factory=list, description="pools this endpoint serves")
    owner: str | None = Field(
        default=None, description="user allowed when no allow-list is given (default: URL user)"
    )
    allowed_users: list[str] = Field(
        default_factory=list, description="users who may call; ['*'] allows everybody"
    )
    admins: list[str] = Field(default_factory=list, description="users who see everything")
    prefetch: int = Field(default=32, ge=1, le=1000)
    heartbeat: int = Field(default=10, ge=1, le=60, description="AMQP heartbeat and presence, s")
    max_body: int = Field(default=DEFAULT_MAX_BODY, ge=1024, le=HARD_MAX_BODY)
    state_dir: Path = Field(default_factory=default_state_dir)
    debug: bool = Field(
        default=False, description="include tracebacks in INTERNAL errors; log at DEBUG"
    )
    log_level: LogLevel = Field(
        default="INFO",
        validation_alias=AliasChoices("ORBIT_ENDPOINT_LOG_LEVEL", "ORBIT_LOG_LEVEL"),
        description="DEBUG, INFO, WARNING or ERROR (also read from ORBIT_LOG_LEVEL)",
    )
    journal_retention: float = Field(
        default=7 * 24 * 3600, gt=0, description="seconds answered requests stay in the journal"
    )
    resume_limit: int = Field(
        default=5,
        ge=0,
        le=100,
        description="restarts that may re-run an interrupted idempotent request; the next"
        " one answers POISON_MESSAGE (as the request queue's x-delivery-limit does)",
    )
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return naming.validate_name(value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: SecretStr) -> SecretStr:
        split_urls(value.get_secret_value())
        return value

    @property
    def effective_log_level(self) -> LogLevel:
        """``log_level``, or ``DEBUG`` when ``debug`` is on."""
        return "DEBUG" if self.debug else self.log_level

    @field_validator("pools")
    @classmethod
    def _valid_pools(cls, value: list[str]) -> list[str]:
        return [naming.validate_name(p, "pool") for p in value]

    @property
    def urls(self) -> list[str]:
        """The broker URLs, in the order connections try them."""
        return split_urls(self.url.get_secret_value())

    @property
    def amqp_user(self) -> str:
        """The user of the AMQP URL: the ``user_id`` of everything this endpoint publishes."""
        return unquote(urlsplit(self.urls[0]).username or "guest")

    @property
    def journal_path(self) -> Path:
        return self.state_dir / self.name / "journal.sqlite"

    @property
    def safe_url(self) -> str:
        """The URL(s) with the password masked, for logs."""
        return mask_urls(self.url.get_secret_value())


__all__ = ["DEFAULT_URL", "EndpointSettings"]
