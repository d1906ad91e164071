"""The authenticated caller and the roles a route may demand."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass

from maxloyalty.kit.context import Actor


class Role(enum.StrEnum):
    OWNER = "OWNER"
    RESTAURANT_ADMIN = "RESTAURANT_ADMIN"
    MANAGER = "MANAGER"
    CASHIER = "CASHIER"
    GUEST = "GUEST"
    SYSTEM = "SYSTEM"


# Roles confined to a list of restaurants inside their tenant.
RESTAURANT_SCOPED = frozenset({Role.MANAGER, Role.CASHIER})


@dataclass(frozen=True, slots=True)
class Principal:
    subject: uuid.UUID
    role: Role
    tenant_id: uuid.UUID | None
    restaurant_ids: frozenset[uuid.UUID] = frozenset()

    def can_see_restaurant(self, restaurant_id: uuid.UUID) -> bool:
        return self.role not in RESTAURANT_SCOPED or restaurant_id in self.restaurant_ids

    @property
    def actor(self) -> Actor:
        kind = "api_key" if self.role is Role.SYSTEM else "user"
        return Actor(kind=kind, id=self.subject, role=self.role.value)
