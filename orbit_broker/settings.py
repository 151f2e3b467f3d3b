"""Settings of the private local node: ``ORBIT_BROKER_*`` environment > defaults."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .local import (
    DEFAULT_AMQP_PORT,
    DEFAULT_DIST_PORT,
    DEFAULT_EPMD_PORT,
    DEFAULT_MANAGEMENT_PORT,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_NODE_NAME,
    LocalNode,
    default_data_dir,
)


class BrokerSettings(BaseSettings):
    """Where and how ``orbit broker up`` runs its private RabbitMQ node."""

    model_config = SettingsConfigDict(env_prefix="ORBIT_BROKER_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    node_name: str = DEFAULT_NODE_NAME
    amqp_port: int = Field(default=DEFAULT_AMQP_PORT, ge=1, le=65535)
    management_port: int = Field(default=DEFAULT_MANAGEMENT_PORT, ge=1, le=65535)
    dist_port: int = Field(default=DEFAULT_DIST_PORT, ge=1, le=65535)
    epmd_port: int = Field(default=DEFAULT_EPMD_PORT, ge=1, le=65535)
    heartbeat: int = Field(default=10, ge=0, le=600)
    max_message_size: int = Field(default=DEFAULT_MAX_MESSAGE_SIZE, ge=4096, le=512 * 1024**2)

    def node(self) -> LocalNode:
        """A :class:`LocalNode` with these settings."""
        return LocalNode(
            data_dir=self.data_dir,
            name=self.node_name,
            amqp_port=self.amqp_port,
            management_port=self.management_port,
            dist_port=self.dist_port,
            epmd_port=self.epmd_port,
            heartbeat=self.heartbeat,
            max_message_size=self.max_message_size,
        )


__all__ = ["BrokerSettings"]
