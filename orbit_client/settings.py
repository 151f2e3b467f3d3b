"""Client configuration: explicit arguments > ``ORBIT_*`` environment > profile file > defaults.

A profile is a JSON file (default ``~/.config/orbit/profile.json``, mode 0600) written by
``orbit broker provision``/``orbit broker up``; ``ORBIT_PROFILE`` names another one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from orbit_protocol.headers import DEFAULT_MAX_BODY, HARD_MAX_BODY

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

    url: SecretStr = Field(default=SecretStr(DEFAULT_URL), description="AMQP(S) URL incl. vhost")
    timeout: float | None = Field(
        default=60.0, description="default call timeout, s (None: wait as long as the queue allows)"
    )
    heartbeat: int = Field(default=10, ge=1, le=60)
    max_body: int = Field(default=DEFAULT_MAX_BODY, ge=1024, le=HARD_MAX_BODY)
    reconnect_interval: float = Field(default=1.0, gt=0)

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
    def user(self) -> str:
        """The AMQP user: the ``user_id`` on every request this client sends."""
        return unquote(urlsplit(self.url.get_secret_value()).username or "guest")

    @property
    def safe_url(self) -> str:
        parts = urlsplit(self.url.get_secret_value())
        port = f":{parts.port}" if parts.port else ""
        user = f"{parts.username}:***@" if parts.username else ""
        return f"{parts.scheme}://{user}{parts.hostname}{port}{parts.path}"


__all__ = ["DEFAULT_URL", "ClientSettings", "profile_path"]
