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
# Roles that sign in with a password and work inside a tenant.
STAFF_ROLES = frozenset({Role.RESTAURANT_ADMIN, Role.MANAGER, Role.CASHIER})


@dataclass(frozen=True, slots=True)
class Principal:
    subject: uuid.UUID
    role: Role
    tenant_id: uuid.UUID | None
    restaurant_ids: frozenset[uuid.UUID] = frozenset()

    @property
    def restaurant_scope(self) -> frozenset[uuid.UUID] | None:
        """The restaurants this caller is confined to, or None for the whole tenant.
        API keys (SYSTEM) are confined only when they were issued for some restaurants."""
        if self.role in RESTAURANT_SCOPED or (self.role is Role.SYSTEM and self.restaurant_ids):
            return self.restaurant_ids
        return None

    def can_see_restaurant(self, restaurant_id: uuid.UUID) -> bool:
        scope = self.restaurant_scope
        return scope is None or restaurant_id in scope

    @property
    def actor(self) -> Actor:
        kind = "api_key" if self.role is Role.SYSTEM else "user"
        return Actor(kind=kind, id=self.subject, role=self.role.value)
