"""Wire models of ``psij.submit_endpoint`` and the ``child`` plugin (pydantic only).

A child endpoint is an Orbit endpoint started inside a batch job by a parent endpoint's
``psij`` plugin; ``tunnel`` says how it reaches the broker from the compute node.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from orbit_protocol import naming

from .schema import Attributes, Executor, Resources

Tunnel = Literal["none", "forward", "reverse"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChildJobSpec(_Model):
    """The batch job that hosts the child (no executable: the job runs the endpoint)."""

    resources: Resources = Field(default_factory=Resources)
    attributes: Attributes = Field(default_factory=Attributes)
    environment: dict[str, str] = Field(
        default_factory=dict, description="extra variables, written into the batch script"
    )
    directory: str | None = Field(default=None, description="working directory of the job")


class SubmitEndpointArgs(_Model):
    spec: ChildJobSpec = Field(default_factory=ChildJobSpec)
    name: str = Field(description="the child endpoint's name (pre-provisioned on the broker)")
    plugins: list[str] = Field(default_factory=lambda: ["sysinfo"])
    tunnel: Tunnel = "none"
    executor: Executor = "slurm"
    allowed_users: list[str] = Field(
        default_factory=list, description="besides the caller, who may call the child"
    )
    setup: str | None = Field(
        default=None,
        max_length=8192,
        description="shell lines bash runs in the job before the child starts (module loads,"
        " venv activation); default: the parent's children.setup. With a setup the child runs"
        " the python3 that the setup leaves on PATH, unless children.python is set",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return naming.validate_name(value)


class ChildInfo(_Model):
    """What ``submit_endpoint`` returns: the hosting job and the child's name."""

    job_id: str
    native_id: str | None
    name: str
    tunnel: Tunnel
    executor: Executor
    state: str


class ChildMeta(_Model):
    """``child.json`` in the job dir: what the in-job launcher needs (no secrets)."""

    name: str
    parent: str
    job_id: str
    tunnel: Tunnel
    broker_host: str
    broker_port: int
    login_host: str
    ssh_options: list[str]
    tunnel_timeout: float
    python: str


class ChildSettings(_Model):
    """``plugin_settings.psij.children``: where child credentials live, how ssh is run."""

    credentials_dir: str = Field(
        default="~/.config/orbit/children",
        description="NAME.url (mode 0600): the AMQP URL of child NAME's own broker user",
    )
    login_host: str | None = Field(
        default=None, description="forward tunnels: host the child ssh-es to (default: ours)"
    )
    ssh_config: str | None = Field(default=None, description="ssh -F FILE")
    known_hosts: str | None = Field(default=None, description="ssh UserKnownHostsFile")
    strict_host_key_checking: Literal["yes", "accept-new"] = "yes"
    tunnel_timeout: float = Field(default=60.0, gt=0, description="seconds for a tunnel to be up")
    python: str | None = Field(
        default=None,
        description="interpreter on the compute nodes (default: the endpoint's, or python3 on"
        " the PATH the setup leaves)",
    )
    setup: str | None = Field(
        default=None,
        max_length=8192,
        description="default setup of every child job (shell lines run before the child"
        " starts, e.g. 'module load python; source ~/orbit-venv/bin/activate')",
    )


class Announcement(_Model):
    """``child.info`` and the ``<child>.child.online`` event."""

    name: str
    parent: str | None
    job_id: str | None
    host: str
    broker: str = Field(description="host:port the child's AMQP connection goes to")
    tunnel: Tunnel
    allocation: dict[str, Any] | None = Field(description="queue_info.job_allocation")
