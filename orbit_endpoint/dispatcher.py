"""Request → plugin operation → reply. The one place where errors become error codes."""

from __future__ import annotations

import asyncio
import logging
import traceback
from typing import Any

from pydantic import BaseModel, ValidationError

from orbit_plugins.base import Call, OperationSpec, Plugin
from orbit_protocol import (
    Cancelled,
    InternalError,
    InvalidArgs,
    NotAuthorized,
    OrbitError,
    Reply,
    Request,
    Unavailable,
    UnknownMethod,
    UnknownPlugin,
)

from .registry import LoadedPlugin

log = logging.getLogger(__name__)


class Dispatcher:
    """Resolves operations, validates arguments and runs them, mapping every failure."""

    def __init__(self, plugins: dict[str, LoadedPlugin], *, debug: bool = False) -> None:
        self.plugins = plugins
        self.debug = debug

    def resolve(self, plugin_name: str, method: str) -> tuple[Plugin, OperationSpec]:
        slot = self.plugins.get(plugin_name)
        if slot is None:
            known = ", ".join(sorted(self.plugins))
            raise UnknownPlugin(
                f"this endpoint has no plugin {plugin_name!r} (it has: {known})",
                {"plugins": sorted(self.plugins)},
            )
        if slot.plugin is None:
            raise Unavailable(
                f"plugin {plugin_name!r} is configured but not available: {slot.error}",
                {"reason": slot.error},
            )
        spec = slot.plugin.operations().get(method)
        if spec is None:
            methods = sorted(slot.plugin.operations())
            raise UnknownMethod(
                f"plugin {plugin_name!r} has no operation {method!r}"
                f" (it has: {', '.join(methods)})",
                {"methods": methods},
            )
        return slot.plugin, spec

    @staticmethod
    def validate(spec: OperationSpec, args: dict[str, Any]) -> BaseModel:
        try:
            return spec.args_model.model_validate(args)
        except ValidationError as exc:
            errors = [
                {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()
            ]
            summary = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'args'}: {e['msg']}" for e in errors
            )
            raise InvalidArgs(
                f"invalid arguments for {spec.name}: {summary}", {"errors": errors}
            ) from None

    async def run(self, request: Request, call: Call) -> Reply:
        """Execute ``request``; never raises (except ``CancelledError`` on shutdown)."""
        try:
            plugin, spec = self.resolve(request.plugin, request.method)
            if spec.admin_only and not call.is_admin:
                raise NotAuthorized(f"{request.operation} is for the endpoint's admins only")
            args = self.validate(spec, request.args)
            return Reply.success(await plugin.invoke(spec, args, call))
        except OrbitError as exc:
            return Reply.failure(exc)
        except asyncio.CancelledError:
            if call.cancelled:
                return Reply.failure(Cancelled(f"request {call.request_id} was cancelled"))
            raise
        except Exception as exc:
            log.exception("%s failed for request %s", request.operation, call.request_id)
            details: dict[str, Any] = {"type": type(exc).__name__}
            if self.debug:
                details["traceback"] = traceback.format_exc()
            return Reply.failure(InternalError(f"{request.operation} failed: {exc}", details))


__all__ = ["Dispatcher"]
