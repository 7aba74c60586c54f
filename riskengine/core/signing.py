"""Signed pushes: the HMAC-SHA256 header on what the engine POSTs (credit-platform batches, early
warnings to webhooks), ``t=<unix seconds>,v1=<hex HMAC of "<t>." + body>``, and a receiver's check."""

from __future__ import annotations

import hashlib
import hmac
import time


def sign(secret: bytes | str, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    key = secret.encode() if isinstance(secret, str) else secret
    mac = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: bytes | str, header: str, body: bytes, *, now: float | None = None,
           tolerance: int = 300) -> bool:
    """A receiver's check of the signature header (constant time; at most ``tolerance`` seconds old)."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)
