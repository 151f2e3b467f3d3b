"""``orbit gateway``: the browser gateway (SSE, JSON RPC, Explorer UI, AsyncAPI)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ..options import DebugOpt, UrlOpt

EPILOG = """\
[bold]Examples[/]

  [cyan]orbit gateway[/]                         on 127.0.0.1:8765, broker from the profile
  [cyan]orbit gateway --url amqp://127.0.0.1:5672/orbit --port 9000[/]
  [cyan]orbit gateway --host 0.0.0.0 --tls-cert cert.pem --tls-key key.pem[/]

Users log in with their own broker user and password; the URL's credentials are ignored."""


def plugin_schemas() -> dict[str, Any]:
    """Installed plugins (entry points + the built-in ``orbit``) with their operation schemas;
    a plugin whose dependencies are missing is left out."""
    from orbit_endpoint.builtin import OrbitPlugin
    from orbit_endpoint.registry import describe_plugin, installed

    classes = {"orbit": OrbitPlugin, **installed()}
    return {
        name: describe_plugin(cls)
        for name, cls in sorted(classes.items())
        if not isinstance(cls, Exception)
    }


def gateway(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="HTTP port.")] = 8765,
    history: Annotated[
        int, typer.Option("--history", min=1, help="Events kept per user for replay.")
    ] = 1000,
    client_queue: Annotated[
        int,
        typer.Option(
            "--client-queue", min=1, help="Frames buffered per SSE connection before it is ended."
        ),
    ] = 1000,
    send_timeout: Annotated[
        float,
        typer.Option(
            "--send-timeout", min=0.1, help="Seconds a blocked SSE write may wait before closing."
        ),
    ] = 30.0,
    ping: Annotated[
        float, typer.Option("--ping", min=0.1, help="Seconds between SSE keep-alive comments.")
    ] = 15.0,
    ssl_certfile: Annotated[
        str | None,
        typer.Option("--tls-cert", "--ssl-certfile", help="TLS certificate (PEM): serve HTTPS."),
    ] = None,
    ssl_keyfile: Annotated[
        str | None, typer.Option("--tls-key", "--ssl-keyfile", help="TLS key (PEM).")
    ] = None,
    url: UrlOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Serve the Explorer UI, [bold]/events[/] (SSE), [bold]/api[/] and [bold]/asyncapi.json[/]."""
    import uvicorn

    from orbit_client import ClientSettings
    from orbit_gateway import GatewaySettings, create_app

    broker_url = url or ClientSettings().url.get_secret_value()
    settings = GatewaySettings(
        url=broker_url,
        history=history,
        client_queue=client_queue,
        send_timeout=send_timeout,
        ping=ping,
        plugin_schemas=plugin_schemas,
    )
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        log_level="debug" if debug else "info",
    )


ASYNCAPI_EPILOG = """\
[bold]Examples[/]

  [cyan]orbit broker asyncapi > asyncapi.json[/]
  [cyan]orbit broker asyncapi --url amqps://broker.example:5671/orbit | jq .operations[/]"""


def asyncapi(url: UrlOpt = None) -> None:
    """Print the AsyncAPI 3.0 document: topology, request/reply pairs of every installed plugin,
    events and presence."""
    import json
    import sys

    from orbit_client import ClientSettings
    from orbit_protocol.asyncapi import build

    broker_url = url or ClientSettings().url.get_secret_value()
    sys.stdout.write(json.dumps(build(plugin_schemas(), broker_url), indent=2) + "\n")


__all__ = ["ASYNCAPI_EPILOG", "EPILOG", "asyncapi", "gateway", "plugin_schemas"]
