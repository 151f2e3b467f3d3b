"""Wire models of the ``iri_connect`` and ``iri`` plugins (pydantic only: clients import this).

Job specs follow the DOE IRI Facility API (a PSI/J ``JobSpec``); facility answers that
Orbit does not interpret (resources, incidents, projects, allocations) pass through as
JSON objects. Tokens are :class:`~pydantic.SecretStr`: never shown in reprs, logs or errors.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from orbit_protocol.naming import NAME_PATTERN

TERMINAL: frozenset[str] = frozenset({"completed", "failed", "canceled"})
SiteName = Annotated[
    str, Field(pattern=NAME_PATTERN, description="Facility name from the IRI config (e.g. nersc).")
]


class _Model(BaseModel):
    # ids typed on a command line arrive as numbers (Slurm job 123): take them as strings
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


# -- configuration ------------------------------------------------------------------


class Facility(_Model):
    """One facility of the config file (``[facilities.<site>]``)."""

    label: str = Field(description="Human name, e.g. 'NERSC'.")
    url: str = Field(description="API root, e.g. https://api.iri.nersc.gov/api/v1")
    auth: str = Field(default="", description="How users obtain a token (informational).")
    auth_scheme: Literal["bearer", "raw"] = Field(
        default="bearer", description="'bearer': 'Authorization: Bearer <t>'; 'raw': '<t>'."
    )
    ca_bundle: str | None = Field(default=None, description="CA file for a private TLS root.")


class ConnectSettings(_Model):
    """Endpoint-side settings of ``iri_connect`` (``plugin_settings.iri_connect``)."""

    config: str | None = Field(
        default=None,
        description="Facilities file (TOML or JSON); else env ORBIT_IRI_CONFIG; else the"
        " example shipped with Orbit.",
    )
    timeout: float = Field(default=30.0, gt=0, le=600, description="Seconds per HTTP call.")
    verify_on_connect: bool = Field(
        default=True, description="Check the token with GET /account/projects on connect."
    )


class IriSettings(_Model):
    """Endpoint-side settings of ``iri`` (``plugin_settings.iri``)."""

    poll_interval: float = Field(
        default=10.0, gt=0, description="Seconds between polls of submitted, unfinished jobs."
    )


# -- iri_connect --------------------------------------------------------------------


class FacilityInfo(_Model):
    site: str
    label: str
    url: str
    auth: str
    connected: bool


class FacilityList(_Model):
    config: str = Field(description="The file the facilities were read from.")
    facilities: list[FacilityInfo]


class ConnectArgs(_Model):
    site: SiteName
    token: SecretStr = Field(description="Your access token for this facility (memory only).")


class SiteArgs(_Model):
    site: SiteName


class Connected(_Model):
    site: str
    label: str
    url: str
    status: Literal["connected", "token_updated"]


class Disconnected(_Model):
    site: str
    forgotten_jobs: int = Field(description="Watched jobs no longer followed.")


class SiteStatus(_Model):
    site: str
    label: str
    url: str
    connected: bool
    connected_at: float | None = None
    watched_jobs: int = 0
    last_error: str | None = None


# -- iri (per site) -----------------------------------------------------------------


class ResourceSpec(_Model):
    node_count: int | None = Field(default=None, ge=1)
    process_count: int | None = Field(default=None, ge=1)
    processes_per_node: int | None = Field(default=None, ge=1)
    cpu_cores_per_process: int | None = Field(default=None, ge=1)
    gpu_cores_per_process: int | None = Field(default=None, ge=1)
    exclusive_node_use: bool = True
    memory: int | None = Field(default=None, ge=1, description="Bytes.")


class JobAttributes(_Model):
    duration: int | None = Field(default=None, ge=1, description="Seconds.")
    queue_name: str | None = None
    account: str | None = None
    reservation_id: str | None = None
    custom_attributes: dict[str, str] = Field(default_factory=dict)


class JobSpec(_Model):
    """A PSI/J job spec as the IRI Facility API takes it (``extra=forbid``, like the API)."""

    executable: str | None = None
    arguments: list[str] = Field(default_factory=list)
    directory: str | None = None
    name: str | None = None
    inherit_environment: bool = True
    environment: dict[str, str] = Field(default_factory=dict)
    stdin_path: str | None = None
    stdout_path: str | None = None
    stderr_path: str | None = None
    resources: ResourceSpec | None = None
    attributes: JobAttributes | None = None
    pre_launch: str | None = None
    post_launch: str | None = None
    launcher: str | None = None


class ListResourcesArgs(SiteArgs):
    resource_type: str | None = Field(
        default="compute", description="compute, storage, system, …; null for all."
    )
    limit: int = Field(default=100, ge=1, le=1000)


class ResourceRef(SiteArgs):
    resource_id: str = Field(min_length=1)


class SubmitArgs(ResourceRef):
    job_spec: JobSpec


class JobRef(ResourceRef):
    job_id: str = Field(min_length=1)


class JobStatusArgs(JobRef):
    follow: bool = Field(
        default=False,
        description="Also follow this job with job_status events until it ends (e.g. a job"
        " submitted before an endpoint restart).",
    )


class ListJobsArgs(ResourceRef):
    limit: int = Field(default=100, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    historical: bool = False


class IncidentsArgs(SiteArgs):
    resource_id: str | None = None
    limit: int = Field(default=100, ge=1, le=1000)


class AllocationsArgs(SiteArgs):
    project_id: str = Field(min_length=1)


class JobStatus(BaseModel):
    """A job's status as the facility reports it (unknown fields kept)."""

    model_config = ConfigDict(extra="allow")

    state: str
    time: float | None = None
    message: str | None = None
    exit_code: int | None = None


class Job(BaseModel):
    """A job as the facility reports it; ``site`` and ``resource_id`` added by Orbit."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    id: str
    site: str
    resource_id: str
    status: JobStatus | None = None


class Jobs(_Model):
    jobs: list[Job]


class Cancelled(_Model):
    site: str
    resource_id: str
    job_id: str
    cancelled: bool


class Items(_Model):
    """A list of facility objects (resources, incidents, projects, allocations)."""

    site: str
    items: list[dict[str, Any]]


class JobStatusEvent(_Model):
    """Data of the ``iri.job_status`` event."""

    site: str
    resource_id: str
    job_id: str
    name: str | None
    state: str
    exit_code: int | None
    message: str | None
    user: str
    details: dict[str, Any]
