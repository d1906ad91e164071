"""Limits on the public sign-in routes: requests per client IP, and failures per account
(a staff login or a guest's phone), so that nobody can guess passwords or codes in bulk."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.audit.service import record
from maxloyalty.identity.errors import AccountLocked
from maxloyalty.kit import context
from maxloyalty.kit.ratelimit import RateLimiter


def client_ip() -> str:
    return context.client.get().ip or "unknown"


async def refuse_if_locked(
    session: AsyncSession,
    limiter: RateLimiter,
    rule: str,
    scope: str,
    account: str,
    *,
    entity_type: str,
    entity_id: str,
) -> None:
    """429 `account_locked` (audited) once `account` has used up its failures in `rule`."""
    if await limiter.test(rule, f"{scope}-failures", account):
        return
    await record(session, f"auth.{scope}_locked", entity_type, entity_id)
    retry_after = await limiter.retry_after(rule, f"{scope}-failures", account)
    raise AccountLocked(
        f"Too many failed attempts; try again in {retry_after} s.",
        headers={"Retry-After": str(retry_after)},
    )


async def count_failure(limiter: RateLimiter, rule: str, scope: str, account: str) -> None:
    await limiter.count(rule, f"{scope}-failures", account)
