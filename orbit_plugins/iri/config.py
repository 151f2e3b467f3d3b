"""The facilities file: which IRI sites an endpoint offers (TOML or JSON, never hard-coded)."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

from pydantic import ValidationError

from orbit_protocol.naming import is_valid_name

from .schema import Facility

ENV = "ORBIT_IRI_CONFIG"
EXAMPLE = Path(__file__).with_name("facilities.example.toml")


def config_path(setting: str | None) -> Path:
    """The file to read: the plugin setting, else ``$ORBIT_IRI_CONFIG``, else the example."""
    chosen = setting or os.environ.get(ENV)
    return Path(chosen).expanduser() if chosen else EXAMPLE


def load_facilities(path: Path) -> dict[str, Facility]:
    """Parse ``{"facilities": {site: {label, url, ...}}}``; raise ``ValueError`` saying why not."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read the IRI facilities file {path}: {exc.strerror}") from None
    try:
        raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if path.suffix == ".json" else "TOML"
        raise ValueError(f"{path} is not valid {kind}: {exc}") from None
    table = raw.get("facilities") if isinstance(raw, dict) else None
    if not isinstance(table, dict) or not table:
        raise ValueError(f"{path} has no [facilities.<site>] tables")
    facilities: dict[str, Facility] = {}
    for site, entry in table.items():
        if not is_valid_name(site):
            raise ValueError(f"{path}: site name {site!r} must match [a-z0-9][a-z0-9_-]*")
        try:
            facility = Facility.model_validate(entry)
        except ValidationError as exc:
            raise ValueError(f"{path}: facility {site!r}: {exc}") from None
        if facility.ca_bundle and not Path(facility.ca_bundle).expanduser().is_file():
            raise ValueError(f"{path}: facility {site!r}: no CA file {facility.ca_bundle}")
        facilities[site] = facility.model_copy(update={"url": facility.url.rstrip("/")})
    return facilities


__all__ = ["ENV", "EXAMPLE", "config_path", "load_facilities"]
