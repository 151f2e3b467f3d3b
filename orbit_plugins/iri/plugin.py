"""The ``iri_connect`` and ``iri`` plugins: DOE IRI Facility API calls with the caller's token.

``iri_connect`` reads the facilities file and holds each caller's token per site, in
memory only (``connect`` is never journaled, the token never logged nor echoed in an
error). ``iri`` makes the per-site calls; the site is an argument rather than a plugin
named ``iri.<site>`` because plugin names are fixed when the endpoint starts and a dot
would split the event routing key ``<endpoint>.<plugin>.<topic>`` (``README.md`` of this
package). A background poller follows submitted jobs and emits ``iri.job_status`` events.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pydantic import ValidationError

from orbit_plugins.base import Call, Plugin, PluginContext, operation
from orbit_plugins.periodic import Periodic
from orbit_protocol import NotFound, OrbitError, Unavailable

from .api import FacilityApi
from .config import config_path, load_facilities
from .hub import Connection, Hub, Watch, hub_for
from .schema import (
    TERMINAL,
    AllocationsArgs,
    Cancelled,
    ConnectArgs,
    Connected,
    ConnectSettings,
    Disconnected,
    FacilityInfo,
    FacilityList,
    IncidentsArgs,
    IriSettings,
    Items,
    Job,
    JobRef,
    Jobs,
    JobStatusArgs,
    JobStatusEvent,
    ListJobsArgs,
    ListResourcesArgs,
    ResourceRef,
    SiteArgs,
    SiteStatus,
    SubmitArgs,
)


def _seg(value: str) -> str:
    """One URL path segment (ids are the facility's, so quote everything)."""
    return quote(value, safe="")


class IriConnectPlugin(Plugin):
    """Which IRI facilities this endpoint offers, and your token for each (memory only)."""

    name = "iri_connect"
    version = "0.1.0"
    description = "DOE IRI facilities: list them, connect with your token, disconnect, status."
    settings_model = ConnectSettings

    @property
    def cfg(self) -> ConnectSettings:
        if not isinstance(self.settings, ConnectSettings):
            raise TypeError("iri_connect settings were not validated")
        return self.settings

    async def setup(self, ctx: PluginContext) -> None:
        """Read the facilities file; a missing or broken file makes the plugin UNAVAILABLE."""
        path = config_path(self.cfg.config)
        try:
            facilities = load_facilities(path)
        except ValueError as exc:
            raise Unavailable(str(exc)) from None
        await super().setup(ctx)
        self.hub = hub_for(ctx)
        with self.hub.lock:
            self.hub.facilities, self.hub.config = facilities, path
        ctx.logger.info("IRI facilities from %s: %s", path, ", ".join(sorted(facilities)))

    async def stop(self) -> None:
        if self._ctx is not None:
            self.hub.forget_all()  # every token leaves memory with the endpoint

    @operation(idempotent=True)
    def list_facilities(self, call: Call) -> FacilityList:
        """The configured facilities, and whether you are connected to each."""
        with self.hub.lock:
            facilities = dict(self.hub.facilities)
            mine = {site for user, site in self.hub.connections if user == call.user}
        return FacilityList(
            config=str(self.hub.config),
            facilities=[
                FacilityInfo(site=s, label=f.label, url=f.url, auth=f.auth, connected=s in mine)
                for s, f in sorted(facilities.items())
            ],
        )

    @operation(idempotent=True, journal=False)  # the token never reaches the disk
    def connect(self, args: ConnectArgs, call: Call) -> Connected:
        """Hand the endpoint your token for a site (memory only; connect again to rotate it)."""
        facility = self.hub.facility(args.site)
        api = FacilityApi(
            args.site, facility, args.token.get_secret_value(), timeout=self.cfg.timeout
        )
        if self.cfg.verify_on_connect:
            try:
                api.request("GET", "account/projects")
            except OrbitError:
                api.close()
                raise
        replaced = self.hub.replace(call.user, args.site, api)
        self.ctx.logger.info("%s connected to IRI site %s", call.user, args.site)
        return Connected(
            site=args.site,
            label=facility.label,
            url=facility.url,
            status="token_updated" if replaced else "connected",
        )

    @operation(idempotent=True)
    def disconnect(self, args: SiteArgs, call: Call) -> Disconnected:
        """Forget your token for a site; its jobs are no longer followed."""
        self.hub.facility(args.site)
        conn = self.hub.drop(call.user, args.site)
        if conn is None:
            raise NotFound(f"you are not connected to {args.site!r}")
        return Disconnected(site=args.site, forgotten_jobs=len(conn.watched))

    @operation(idempotent=True)
    def get_status(self, args: SiteArgs, call: Call) -> SiteStatus:
        """Your connection to a site: since when, jobs followed, the poller's last error."""
        facility = self.hub.facility(args.site)
        with self.hub.lock:
            conn = self.hub.connections.get((call.user, args.site))
        base = SiteStatus(site=args.site, label=facility.label, url=facility.url, connected=False)
        if conn is None:
            return base
        return base.model_copy(
            update={
                "connected": True,
                "connected_at": conn.connected_at,
                "watched_jobs": len(conn.watched),
                "last_error": conn.last_error,
            }
        )


class IriPlugin(Plugin):
    """Per-site IRI Facility API calls (resources, jobs, incidents, projects) with your token."""

    name = "iri"
    version = "0.1.0"
    description = "DOE IRI Facility API per site: resources, jobs, incidents, projects."
    settings_model = IriSettings

    def __init__(self, settings: dict[str, object] | None = None) -> None:
        super().__init__(settings)
        self._poller = Periodic("iri-poller", lambda: self.cfg.poll_interval, self._poll_once)

    @property
    def cfg(self) -> IriSettings:
        if not isinstance(self.settings, IriSettings):
            raise TypeError("iri settings were not validated")
        return self.settings

    async def setup(self, ctx: PluginContext) -> None:
        await super().setup(ctx)
        self.hub: Hub = hub_for(ctx)

    async def start(self) -> None:
        self._poller.start(self.ctx.logger)

    async def stop(self) -> None:
        await self._poller.stop()

    def _api(self, site: str, call: Call) -> FacilityApi:
        return self.hub.connection(call.user, site).api

    # ------------------------------------------------------------------ status, account

    @operation(idempotent=True)
    def list_resources(self, args: ListResourcesArgs, call: Call) -> Items:
        """Resources of a facility (default: compute), with their current status."""
        found = self._api(args.site, call).request(
            "GET",
            "status/resources",
            params={"resource_type": args.resource_type, "limit": args.limit},
        )
        return _items(found, args.site)

    @operation(idempotent=True)
    def get_resource(self, args: ResourceRef, call: Call) -> dict[str, Any]:
        """One resource of a facility."""
        found = self._api(args.site, call).request(
            "GET", f"status/resources/{_seg(args.resource_id)}"
        )
        if not isinstance(found, dict):
            raise Unavailable(
                f"IRI site {args.site!r} answered with no resource", {"site": args.site}
            )
        return found

    @operation(idempotent=True)
    def list_incidents(self, args: IncidentsArgs, call: Call) -> Items:
        """Current and planned incidents (outages, maintenance) of a facility."""
        api = self._api(args.site, call)
        params = {"resource_id": args.resource_id, "limit": args.limit}
        try:
            found = api.request("GET", "status/incidents", params=params)
        except NotFound:  # the reference API answers 404 when there is no incident
            found = []
        return _items(found, args.site)

    @operation(idempotent=True)
    def list_projects(self, args: SiteArgs, call: Call) -> Items:
        """Your projects at a facility."""
        found = self._api(args.site, call).request("GET", "account/projects")
        return _items(found, args.site)

    @operation(idempotent=True)
    def list_allocations(self, args: AllocationsArgs, call: Call) -> Items:
        """The allocations of one of your projects."""
        path = f"account/projects/{_seg(args.project_id)}/project_allocations"
        found = self._api(args.site, call).request("GET", path)
        return _items(found, args.site)

    # ------------------------------------------------------------------ jobs

    @operation
    def submit_job(self, args: SubmitArgs, call: Call) -> Job:
        """Submit a PSI/J job spec to a compute resource; ``job_status`` events follow it.

        The request id goes along as ``Idempotency-Key``, so a facility that honours it
        runs a retried submission once.
        """
        conn = self.hub.connection(call.user, args.site)
        found = conn.api.request(
            "POST",
            f"compute/job/{_seg(args.resource_id)}",
            json=args.job_spec.model_dump(mode="json", exclude_unset=True),
            headers={"Idempotency-Key": call.request_id},
        )
        job = _job(found, args.site, args.resource_id)
        with self.hub.lock:
            conn.watched[(args.resource_id, job.id)] = Watch(
                args.resource_id, job.id, args.job_spec.name
            )
        return job

    @operation(idempotent=True)
    def get_job_status(self, args: JobStatusArgs, call: Call) -> Job:
        """A job's current status (``follow``: emit ``job_status`` events for it from now on)."""
        conn = self.hub.connection(call.user, args.site)
        job = self._observe(call.user, args.site, conn, args.resource_id, args.job_id)
        state = job.status.state.lower() if job.status else "unknown"
        if args.follow and state not in TERMINAL:
            spec = (job.model_extra or {}).get("job_spec")
            name = spec.get("name") if isinstance(spec, dict) else None
            with self.hub.lock:
                key = (args.resource_id, job.id)
                if key not in conn.watched:
                    conn.watched[key] = Watch(args.resource_id, job.id, name, last_state=state)
        return job

    @operation(idempotent=True)
    def list_jobs(self, args: ListJobsArgs, call: Call) -> Jobs:
        """Your jobs on a compute resource (``historical`` adds finished ones)."""
        found = self._api(args.site, call).request(
            "POST",
            f"compute/status/{_seg(args.resource_id)}",
            params={
                "offset": args.offset,
                "limit": args.limit,
                "historical": str(args.historical).lower(),
            },
        )
        listed = _items(found, args.site).items
        return Jobs(jobs=[_job(j, args.site, args.resource_id) for j in listed])

    @operation
    def cancel_job(self, args: JobRef, call: Call) -> Cancelled:
        """Cancel a job; the poller reports its final state."""
        api = self._api(args.site, call)
        api.request("DELETE", f"compute/cancel/{_seg(args.resource_id)}/{_seg(args.job_id)}")
        return Cancelled(
            site=args.site, resource_id=args.resource_id, job_id=args.job_id, cancelled=True
        )

    # ------------------------------------------------------------------ following jobs

    def _observe(
        self, user: str, site: str, conn: Connection, resource_id: str, job_id: str
    ) -> Job:
        """Fetch a job; emit ``job_status`` if a watched job changed; unwatch it when final."""
        path = f"compute/status/{_seg(resource_id)}/{_seg(job_id)}"
        job = _job(conn.api.request("GET", path), site, resource_id)
        state = job.status.state.lower() if job.status else "unknown"
        with self.hub.lock:
            watch = conn.watched.get((resource_id, job_id))
            changed = watch is not None and watch.last_state != state
            if watch is not None:
                watch.last_state = state
                if state in TERMINAL:
                    del conn.watched[(resource_id, job_id)]
        if changed and watch is not None:
            status = job.status.model_dump(mode="json") if job.status else {}
            event = JobStatusEvent(
                site=site,
                resource_id=resource_id,
                job_id=job_id,
                name=watch.name,
                state=state,
                exit_code=job.status.exit_code if job.status else None,
                message=job.status.message if job.status else None,
                user=user,
                details=status,
            )
            self.ctx.emit("job_status", event.model_dump(mode="json"), persistent=True)
        return job

    def _poll_once(self) -> None:
        for user, site, conn in self.hub.snapshot():
            with self.hub.lock:
                watches = list(conn.watched.values())
            for watch in watches:
                try:
                    self._observe(user, site, conn, watch.resource_id, watch.job_id)
                    conn.last_error = None
                except NotFound:
                    with self.hub.lock:
                        conn.watched.pop((watch.resource_id, watch.job_id), None)
                    self.ctx.logger.warning("IRI job %s on %s is gone", watch.job_id, site)
                except OrbitError as exc:
                    if conn.last_error != exc.message:  # say it once, not every round
                        self.ctx.logger.warning("polling IRI job %s failed: %s", watch.job_id, exc)
                    conn.last_error = exc.message


def _items(found: object, site: str) -> Items:
    """A facility's list answer (nothing, for 204); ``UNAVAILABLE`` when it is not a list of
    objects (a broken facility is not an Orbit bug)."""
    found = [] if found is None else found
    if not isinstance(found, list) or not all(isinstance(item, dict) for item in found):
        raise Unavailable(f"IRI site {site!r} answered with no list of objects", {"site": site})
    return Items(site=site, items=found)


def _job(found: object, site: str, resource_id: str) -> Job:
    """A facility's job document, tagged with where it runs."""
    if not isinstance(found, dict) or "id" not in found:
        raise Unavailable(f"IRI site {site!r} answered with no job id", {"site": site})
    try:
        return Job.model_validate(found | {"site": site, "resource_id": resource_id})
    except ValidationError:
        raise Unavailable(
            f"IRI site {site!r} answered with an unreadable job", {"site": site}
        ) from None


__all__ = ["IriConnectPlugin", "IriPlugin"]
