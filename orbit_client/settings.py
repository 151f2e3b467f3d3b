"""Client configuration: explicit arguments > ``ORBIT_*`` environment > profile file > defaults.

A profile is a JSON file (default ``~/.config/orbit/profile.json``, mode 0600) written by
``orbit broker provision``/``orbit broker up``; ``ORBIT_PROFILE`` names another one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from orbit_protocol.headers import DEFAULT_MAX_BODY, HARD_MAX_BODY
from orbit_protocol.urls import mask_urls, split_urls

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:35672/orbit"


def profile_path() -> Path:
    explicit = os.environ.get("ORBIT_PROFILE")
    if explicit:
        return Path(explicit).expanduser()
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "orbit" / "profile.json"


class _ProfileSource(PydanticBaseSettingsSource):
    """Reads the ``client`` section (or the top level) of the profile file."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = profile_path()
        if not path.is_file():
            return {}
        data = json.loads(path.read_text())
        section = data.get("client", data)
        return {k: v for k, v in section.items() if k in ClientSettings.model_fields}


class ClientSettings(BaseSettings):
    """How a client reaches the broker and how long it waits."""

    model_config = SettingsConfigDict(env_prefix="ORBIT_", extra="ignore")

    url: SecretStr = Field(
        default=SecretStr(DEFAULT_URL),
        description="AMQP(S) URL incl. vhost; several nodes of a cluster comma-separated"
        " (later entries may omit user and vhost)",
    )
    timeout: float | None = Field(
        default=60.0, description="default call timeout, s (None: wait as long as the queue allows)"
    )
    heartbeat: int = Field(default=10, ge=1, le=60)
    max_body: int = Field(default=DEFAULT_MAX_BODY, ge=1024, le=HARD_MAX_BODY)
    reconnect_interval: float = Field(default=1.0, gt=0)
    reply_queue_type: Literal["auto", "classic", "quorum"] = Field(
        default="auto",
        description="type of the reply queue; auto: quorum (replicated) when url names several"
        " nodes, so replies survive the loss of one, classic otherwise",
    )

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: SecretStr) -> SecretStr:
        split_urls(value.get_secret_value())
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _ProfileSource(settings_cls)

    @property
    def urls(self) -> list[str]:
        """The broker URLs, in the order the connection tries them."""
        return split_urls(self.url.get_secret_value())

    @property
    def user(self) -> str:
        """The AMQP user: the ``user_id`` on every request this client sends."""
        return unquote(urlsplit(self.urls[0]).username or "guest")

    @property
    def safe_url(self) -> str:
        """The URL(s) with the password masked, for logs and errors."""
        return mask_urls(self.url.get_secret_value())

    @property
    def quorum_replies(self) -> bool:
        """Whether the reply queue is a quorum queue (see ``reply_queue_type``)."""
        if self.reply_queue_type == "auto":
            return len(self.urls) > 1
        return self.reply_queue_type == "quorum"


__all__ = ["DEFAULT_URL", "ClientSettings", "profile_path"]
