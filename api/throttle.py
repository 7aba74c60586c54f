"""Throttling of failed authentication, per client address and per key id (the `limits` library).

- A client address with too many failed keys in the window gets 429 (with ``Retry-After``) before
  its key is even looked at, until the window moves on.
- A key id with too many failed attempts (someone guessing its secret) answers further *failed*
  attempts with 429; the key's holder, sending the right secret, is never locked out.
Limits are ``service.failed_auth_per_address`` and ``service.failed_auth_per_key`` (``limits``
notation, e.g. ``20/minute``). Counts live in memory, per server process.
"""

from __future__ import annotations

import math
import time

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


class FailedAuthThrottle:
    """Counts failed authentications and says when a caller must wait."""

    def __init__(self, per_address: str, per_key: str) -> None:
        self.per_address = parse(per_address)
        self.per_key = parse(per_key)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def _wait(self, item: object, *identifiers: str) -> int:
        stats = self._limiter.get_window_stats(item, *identifiers)  # type: ignore[arg-type]
        return max(1, math.ceil(stats.reset_time - time.time()))

    def address_wait(self, address: str | None) -> int | None:
        """Seconds the address must wait before it may try again, or None."""
        if address is None or self._limiter.test(self.per_address, "address", address):
            return None
        return self._wait(self.per_address, "address", address)

    def failed(self, address: str | None, key_id: str | None) -> int | None:
        """Count one failure; the seconds to wait if the address or key id is now over its limit."""
        waits = []
        if address is not None and not self._limiter.hit(self.per_address, "address", address):
            waits.append(self._wait(self.per_address, "address", address))
        if key_id is not None and not self._limiter.hit(self.per_key, "key", key_id):
            waits.append(self._wait(self.per_key, "key", key_id))
        return max(waits) if waits else None
