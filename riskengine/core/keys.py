"""API keys: roles, scopes, and tokens that are stored only as hashes.

A token looks like ``rk_<key id>_<secret>``: the key id (8 hex characters) names the key in lists
and in the audit log; the secret is 32 random bytes (``secrets.token_urlsafe``). The store keeps
the SHA-256 of the whole token — with 256 bits of entropy a plain hash cannot be brute-forced, so
no salt or slow hash is needed — and the token itself is shown once, when the key is created.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence

from riskengine.core.contract import PILOT_SECTORS
from riskengine.core.errors import UsageError
from riskengine.core.store import KeyRecord, utcnow

ROLES: tuple[str, ...] = ("inspector", "credit_office", "sector", "admin", "finance")

# What each role may do (issue 6, "Roles and scopes").
RIGHTS: dict[str, frozenset[str]] = {
    # grades and frequencies, explanations and plans of enterprises in their districts
    # (and that a case exists on one of them, never its documents), and the early warnings of their
    # districts (issue 14), acknowledged in the pages
    "inspector": frozenset({"grades", "explanations", "plans", "case_existence", "warnings"}),
    # everything, plus overrides, what-if scoring, the case work (objections, credit repairs), the
    # credit record and finance partners' authorizations, the warnings and the monthly monitoring report
    "credit_office": frozenset({"grades", "explanations", "plans", "overrides", "whatif", "cases",
                                "case_existence", "credit_record", "authorizations", "warnings",
                                "monitoring"}),
    # grades and frequencies of one pilot sector's enterprises; no explanations, no plans
    "sector": frozenset({"grades", "case_existence"}),
    # keys, reload and webhook subscriptions; no enterprise data
    "admin": frozenset({"admin"}),
    # a bank or guarantor (质量信用金融+): an enterprise's credit record, only under its authorization
    "finance": frozenset({"credit_record"}),
}

_TOKEN = re.compile(r"^rk_([0-9a-f]{8})_([A-Za-z0-9_-]{20,})$")


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def key_id_of(token: str) -> str | None:
    """The key id inside a well-formed token, else None."""
    match = _TOKEN.match(token)
    return match.group(1) if match else None


def token_matches(record: KeyRecord, token: str) -> bool:
    """Whether ``token`` is the key of ``record`` (constant-time comparison)."""
    return hmac.compare_digest(record.key_hash, hash_token(token))


def validate_scope(
    role: str, districts: Sequence[str], sector: str | None
) -> tuple[tuple[str, ...], str | None]:
    """Check that a role has exactly the scope it needs; returns the cleaned (districts, sector)."""
    if role not in ROLES:
        raise UsageError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    cleaned = tuple(dict.fromkeys(d.strip() for d in districts if d.strip()))
    sector = sector.strip() if sector else None
    if role == "inspector":
        if not cleaned:
            raise UsageError("an inspector key needs at least one --district")
        if sector:
            raise UsageError("an inspector key is scoped by district; --sector is not allowed")
    elif role == "sector":
        if sector not in PILOT_SECTORS:
            raise UsageError(
                f"a sector key needs --sector, one of {', '.join(PILOT_SECTORS)}; got {sector!r}"
            )
        if cleaned:
            raise UsageError("a sector key is scoped by sector; --district is not allowed")
    elif role == "finance":
        if cleaned or sector:
            raise UsageError(
                "a finance key is scoped by the enterprises' authorizations; drop --district/--sector")
    elif cleaned or sector:
        raise UsageError(f"a {role} key has no scope; drop --district/--sector")
    return cleaned, sector


def new_key(
    role: str, districts: Sequence[str] = (), sector: str | None = None, name: str | None = None
) -> tuple[KeyRecord, str]:
    """A new key record (to store) and its token (to show once)."""
    districts, sector = validate_scope(role, districts, sector)
    if role == "finance" and not (name and name.strip()):
        raise UsageError(
            "a finance key needs --name: the partner, as the enterprises' authorizations name it")
    key_id = secrets.token_hex(4)
    token = f"rk_{key_id}_{secrets.token_urlsafe(32)}"
    record = KeyRecord(
        key_id=key_id, name=(name or None), role=role, districts=tuple(districts), sector=sector,
        key_hash=hash_token(token), created_at=utcnow(),
    )
    return record, token


def public_view(record: KeyRecord) -> dict[str, object]:
    """A key as lists show it: everything but the hash."""
    return {
        "key_id": record.key_id, "name": record.name, "role": record.role,
        "districts": list(record.districts), "sector": record.sector,
        "created_at": record.created_at, "revoked_at": record.revoked_at,
    }
