"""A quiet AMQP login probe: the 0-9-1 handshake over a plain or TLS socket, no client library.

Used where a yes/no (or the broker's own refusal text) is all that is wanted and a client
library's reconnect logic and logging would be noise: readiness checks of a node, per-user
connection limits, TLS listeners.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from typing import Any

import pamqp.exceptions
from pamqp import commands, frame, header


def amqp_login_ok(
    host: str,
    port: int,
    user: str,
    password: str,
    timeout: float = 2.0,
    vhost: str = "/",
    *,
    ssl_context: ssl.SSLContext | None = None,
) -> bool:
    """True when a full AMQP 0-9-1 handshake (login + ``connection.open``) succeeds."""
    error = amqp_login_error(host, port, user, password, timeout, vhost, ssl_context=ssl_context)
    return error is None


def amqp_login_error(
    host: str,
    port: int,
    user: str,
    password: str,
    timeout: float = 2.0,
    vhost: str = "/",
    *,
    ssl_context: ssl.SSLContext | None = None,
) -> str | None:
    """None when login + ``connection.open`` succeed, else why not (the broker's own
    ``connection.close`` text when it sent one, e.g. a user's connection limit).

    A raw probe (pamqp frames over a socket, TLS with ``ssl_context``): quiet, no client
    library logging.
    """
    try:
        with contextlib.ExitStack() as stack:
            raw = stack.enter_context(socket.create_connection((host, port), timeout=timeout))
            sock = (
                stack.enter_context(ssl_context.wrap_socket(raw, server_hostname=host))
                if ssl_context is not None
                else raw
            )
            sock.settimeout(timeout)
            sock.sendall(frame.marshal(header.ProtocolHeader(), 0))
            buf = b""

            def expect(kind: type[Any]) -> Any:
                nonlocal buf
                while True:
                    try:
                        used, _channel, value = frame.unmarshal(buf)
                    except pamqp.exceptions.UnmarshalingException:
                        chunk = sock.recv(4096)
                        if not chunk:
                            raise ConnectionError("closed by broker") from None
                        buf += chunk
                        continue
                    buf = buf[used:]
                    if isinstance(value, commands.Connection.Close):
                        raise ConnectionError(f"{value.reply_code} {value.reply_text}")
                    if not isinstance(value, kind):
                        raise ConnectionError(f"unexpected {value!r}")
                    return value

            expect(commands.Connection.Start)
            sock.sendall(
                frame.marshal(
                    commands.Connection.StartOk(
                        client_properties={"product": "orbit-probe"},
                        mechanism="PLAIN",
                        response=f"\0{user}\0{password}",
                    ),
                    0,
                )
            )
            tune = expect(commands.Connection.Tune)
            sock.sendall(
                frame.marshal(commands.Connection.TuneOk(tune.channel_max, tune.frame_max, 0), 0)
            )
            sock.sendall(frame.marshal(commands.Connection.Open(virtual_host=vhost), 0))
            expect(commands.Connection.OpenOk)
            sock.sendall(frame.marshal(commands.Connection.Close(200, "probe done", 0, 0), 0))
            expect(commands.Connection.CloseOk)
    except (OSError, ValueError, pamqp.exceptions.PAMQPException) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


__all__ = ["amqp_login_error", "amqp_login_ok"]
