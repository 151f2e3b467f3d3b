"""What went wrong in a TLS handshake with the broker, in words that name the fix.

OpenSSL's reasons reach the client wrapped in aiormq's connection errors (``[SSL:
CERTIFICATE_VERIFY_FAILED] … self-signed certificate in certificate chain``) or not at all (a
broker that requires a client certificate just resets the connection); :func:`tls_cause`
turns the common cases into one sentence.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit


def tls_cause(error: BaseException, url: str) -> str | None:
    """The cause of a failed ``amqps://`` connect to ``url``, or None when it is not TLS's."""
    parts = urlsplit(url)
    if parts.scheme != "amqps":
        return None
    text = " ".join(str(e) for e in _chain(error))
    host = parts.hostname or "?"
    if "CERTIFICATE_VERIFY_FAILED" in text:
        reason = text.split("certificate verify failed:", 1)[-1].split("(_ssl.c")[0].strip()
        if "mismatch" in reason.lower():
            return (
                f"TLS: the broker's certificate is not valid for {host!r} ({reason}):"
                " connect with a host name or address the certificate was issued for"
            )
        return (
            f"TLS: the broker's certificate does not verify against the CA this client trusts"
            f" ({reason}): cafile= in the URL must name the CA that signed it"
        )
    if "PROTOCOL_VERSION" in text or "UNSUPPORTED_PROTOCOL" in text:
        return (
            "TLS: the broker and this client share no TLS version (Orbit's broker takes 1.2, 1.3)"
        )
    query = parse_qs(parts.query)
    no_cert = "certfile" not in query
    if no_cert and ("CERTIFICATE_REQUIRED" in text or "reset" in text.lower()):
        return (
            "TLS: the broker ended the handshake, and this URL gives no client certificate:"
            " the broker may require one (certfile= and keyfile= in the URL)"
        )
    return None


def _chain(error: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in found and len(found) < 10:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


__all__ = ["tls_cause"]
