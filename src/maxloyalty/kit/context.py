"""Per-request facts that deep layers (audit, logs) need without threading them through."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from uuid import UUID

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: a user, an API key, or the system itself (jobs, CLI)."""

    kind: str  # "user" | "api_key" | "system"
    id: UUID | None = None
    role: str | None = None


@dataclass(frozen=True, slots=True)
class Client:
    ip: str | None = None
    user_agent: str | None = None


SYSTEM = Actor(kind="system")
# Both defaults are frozen dataclasses, so sharing them is safe.
actor: ContextVar[Actor] = ContextVar("actor", default=SYSTEM)
client: ContextVar[Client] = ContextVar("client", default=Client())  # noqa: B039
