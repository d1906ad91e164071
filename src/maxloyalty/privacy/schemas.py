"""The person's copy of their data, and the erasure request.

The copy is typed down to each network's entry: who the person is, their memberships,
consents and sessions. The records other packages keep about them (the guest profile and
its cards with every ledger row, what the tills sent) are passed on as those packages
render them, so their fields are free-form here (`dict[str, Any]`): a column added there
reaches the copy without a change here, as the law wants."""

from __future__ import annotations

import enum
import uuid
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict

from maxloyalty.identity.models import ConsentKind
from maxloyalty.identity.principal import Role
from maxloyalty.kit.timestamps import Timestamp


class Scope(enum.StrEnum):
    NETWORK = "network"  # the network of the caller's token
    ALL = "all"  # every network the person belongs to


class ErasureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scope: Scope = Scope.NETWORK


class ExportedUser(BaseModel):
    id: uuid.UUID
    phone: str | None
    email: str | None
    telegram_id: int | None
    created_at: Timestamp
    last_login_at: Timestamp | None


class ExportedMembership(BaseModel):
    tenant_id: uuid.UUID
    role: Role
    restaurant_ids: list[uuid.UUID]
    active: bool
    since: Timestamp


class ExportedConsent(BaseModel):
    tenant_id: uuid.UUID
    kind: ConsentKind
    granted: bool
    at: Timestamp
    source: str
    ip: str | None


class ExportedSession(BaseModel):
    tenant_id: uuid.UUID | None
    created_at: Timestamp
    last_activity_at: Timestamp
    ip: str | None
    user_agent: str | None
    active: bool


class ExportedChild(BaseModel):
    id: uuid.UUID
    name: str
    birth_date: date | None


class ExportedNetwork(BaseModel):
    """What one network (its own data operator) holds about the person."""

    tenant_id: uuid.UUID
    name: str
    memberships: list[ExportedMembership]
    consents: list[ExportedConsent]
    sessions: list[ExportedSession]
    profile: dict[str, Any] | None  # every column of the guest profile
    children: list[ExportedChild]
    cards: list[dict[str, Any]]  # each card with its ledger rows (`transactions`)
    pos_orders: list[dict[str, Any]]  # what iiko sent with the person's orders
    telegram_chats: list[dict[str, Any]]  # their chat with the network's bot


class PersonalDataExport(BaseModel):
    """Everything stored about the person, per network in `networks`; `memberships`,
    `consents` and `sessions` repeat those networks' entries, for clients that read them
    before `networks` existed."""

    user: ExportedUser
    memberships: list[ExportedMembership]
    consents: list[ExportedConsent]
    sessions: list[ExportedSession]
    networks: list[ExportedNetwork]
