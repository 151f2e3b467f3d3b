"""Typed clients of the ``iri_connect`` and ``iri`` plugins: :class:`AsyncIri` and its
blocking twin :class:`Iri`.

    iri = AsyncIri(client, "gateway-ep")
    await iri.connect("nersc", token)                # kept in the endpoint's memory only
    for r in await iri.resources("nersc"):
        print(r["id"], r.get("name"))
    job = await iri.submit_job("nersc", "perlmutter", JobSpec(executable="/bin/hostname"))
    print((await iri.job_status("nersc", "perlmutter", job.id)).status)

Facility objects (resources, incidents, projects, allocations) are the facility's own JSON;
jobs are :class:`.schema.Job` (the facility's extra fields kept).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orbit_client.feature import AsyncFeatureClient, M, SyncFeatureClient, read

from .schema import (
    Cancelled,
    Connected,
    Disconnected,
    FacilityList,
    Items,
    Job,
    Jobs,
    JobSpec,
    SiteStatus,
)

Spec = JobSpec | Mapping[str, Any]


class AsyncIri(AsyncFeatureClient):
    """IRI Facility API sites reached through one endpoint (tokens stay on the endpoint)."""

    plugin = "iri"
    connect_plugin = "iri_connect"

    async def _connect_op(self, model: type[M], method: str, **args: Any) -> M:
        return read(model, await self._invoke(f"{self.connect_plugin}.{method}", args))

    async def facilities(self) -> FacilityList:
        """The sites the endpoint is configured for, and whether you are connected to each."""
        return await self._connect_op(FacilityList, "list_facilities")

    async def connect(self, site: str, token: str) -> Connected:
        return await self._connect_op(Connected, "connect", site=site, token=token)

    async def disconnect(self, site: str) -> Disconnected:
        return await self._connect_op(Disconnected, "disconnect", site=site)

    async def status(self, site: str) -> SiteStatus:
        return await self._connect_op(SiteStatus, "get_status", site=site)

    async def resources(
        self, site: str, resource_type: str | None = "compute", limit: int = 100
    ) -> list[dict[str, Any]]:
        """The site's resources of ``resource_type`` (``None``: all types)."""
        # ``resource_type=None`` means "all" on the wire, so it is sent, not left out
        found = await self.client.call(
            self.endpoint, "iri.list_resources", site=site, resource_type=resource_type, limit=limit
        )
        return read(Items, found).items

    async def resource(self, site: str, resource_id: str) -> dict[str, Any]:
        found: dict[str, Any] = await self._call("get_resource", site=site, resource_id=resource_id)
        return found

    async def incidents(
        self, site: str, resource_id: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        items = await self._get(
            Items, "list_incidents", site=site, resource_id=resource_id, limit=limit
        )
        return items.items

    async def projects(self, site: str) -> list[dict[str, Any]]:
        return (await self._get(Items, "list_projects", site=site)).items

    async def allocations(self, site: str, project_id: str) -> list[dict[str, Any]]:
        return (await self._get(Items, "list_allocations", site=site, project_id=project_id)).items

    async def submit_job(self, site: str, resource_id: str, job_spec: Spec) -> Job:
        """Submit a PSI/J-shaped job; the endpoint then emits ``iri.job_status`` events."""
        spec = job_spec if isinstance(job_spec, JobSpec) else JobSpec.model_validate(job_spec)
        return await self._get(
            Job,
            "submit_job",
            site=site,
            resource_id=resource_id,
            job_spec=spec.model_dump(exclude_none=True),
        )

    async def job_status(
        self, site: str, resource_id: str, job_id: str, *, follow: bool = False
    ) -> Job:
        """The job as the facility reports it (``follow``: also emit its events until it ends)."""
        return await self._get(
            Job, "get_job_status", site=site, resource_id=resource_id, job_id=job_id, follow=follow
        )

    async def jobs(
        self,
        site: str,
        resource_id: str,
        *,
        limit: int = 100,
        offset: int = 0,
        historical: bool = False,
    ) -> list[Job]:
        found = await self._get(
            Jobs,
            "list_jobs",
            site=site,
            resource_id=resource_id,
            limit=limit,
            offset=offset,
            historical=historical,
        )
        return found.jobs

    async def cancel_job(self, site: str, resource_id: str, job_id: str) -> Cancelled:
        return await self._get(
            Cancelled, "cancel_job", site=site, resource_id=resource_id, job_id=job_id
        )


class Iri(SyncFeatureClient[AsyncIri]):
    """Blocking :class:`AsyncIri` on an :class:`~orbit_client.OrbitClient`."""

    feature = AsyncIri

    def facilities(self) -> FacilityList:
        return self._run(lambda i: i.facilities())

    def connect(self, site: str, token: str) -> Connected:
        return self._run(lambda i: i.connect(site, token))

    def disconnect(self, site: str) -> Disconnected:
        return self._run(lambda i: i.disconnect(site))

    def status(self, site: str) -> SiteStatus:
        return self._run(lambda i: i.status(site))

    def resources(
        self, site: str, resource_type: str | None = "compute", limit: int = 100
    ) -> list[dict[str, Any]]:
        return self._run(lambda i: i.resources(site, resource_type, limit))

    def resource(self, site: str, resource_id: str) -> dict[str, Any]:
        return self._run(lambda i: i.resource(site, resource_id))

    def incidents(
        self, site: str, resource_id: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        return self._run(lambda i: i.incidents(site, resource_id, limit))

    def projects(self, site: str) -> list[dict[str, Any]]:
        return self._run(lambda i: i.projects(site))

    def allocations(self, site: str, project_id: str) -> list[dict[str, Any]]:
        return self._run(lambda i: i.allocations(site, project_id))

    def submit_job(self, site: str, resource_id: str, job_spec: Spec) -> Job:
        return self._run(lambda i: i.submit_job(site, resource_id, job_spec))

    def job_status(self, site: str, resource_id: str, job_id: str, *, follow: bool = False) -> Job:
        return self._run(lambda i: i.job_status(site, resource_id, job_id, follow=follow))

    def jobs(
        self,
        site: str,
        resource_id: str,
        *,
        limit: int = 100,
        offset: int = 0,
        historical: bool = False,
    ) -> list[Job]:
        return self._run(
            lambda i: i.jobs(site, resource_id, limit=limit, offset=offset, historical=historical)
        )

    def cancel_job(self, site: str, resource_id: str, job_id: str) -> Cancelled:
        return self._run(lambda i: i.cancel_job(site, resource_id, job_id))


__all__ = ["AsyncIri", "Iri"]
