"""Who may call a route, named by capability. Each name means one set of callers
everywhere it is used; a route takes the one that says what it needs."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from maxloyalty.identity.dependencies import Authorize
from maxloyalty.identity.errors import CREDENTIAL_REFUSALS, RoleForbidden, TenantRequired
from maxloyalty.identity.principal import Principal, Role
from maxloyalty.kit.errors import MalformedJson, TooManyRequests, ValidationFailed

# The tenant's administrator: programme, catalogue, integrations, webhooks, keys, grants.
TenantAdmin = Annotated[Principal, Depends(Authorize(Role.RESTAURANT_ADMIN))]
# Staff management: the administrator, or anyone granted `write:staff`.
StaffAdmin = Annotated[
    Principal, Depends(Authorize(Role.RESTAURANT_ADMIN, permission="write:staff"))
]
# Managers and the administrator: approvals, guest lists, integration logs.
Manager = Annotated[Principal, Depends(Authorize(Role.MANAGER, Role.RESTAURANT_ADMIN))]
# Everyone who works in the tenant's restaurants.
Staff = Annotated[Principal, Depends(Authorize(Role.RESTAURANT_ADMIN, Role.MANAGER, Role.CASHIER))]
# Whoever posts operations on a card: staff at the cashier page, or a till's API key.
CardOperator = Annotated[
    Principal,
    Depends(Authorize(Role.CASHIER, Role.MANAGER, Role.RESTAURANT_ADMIN, Role.SYSTEM)),
]
# Every caller of the tenant: staff, API keys and guests (guests see only their own).
TenantMember = Annotated[
    Principal,
    Depends(Authorize(Role.CASHIER, Role.MANAGER, Role.RESTAURANT_ADMIN, Role.SYSTEM, Role.GUEST)),
]
# A signed-in person of the tenant (no API keys): their own data, a card's QR.
Person = Annotated[
    Principal,
    Depends(Authorize(Role.GUEST, Role.CASHIER, Role.MANAGER, Role.RESTAURANT_ADMIN)),
]
# Anyone who signs in with a password.
PasswordHolder = Annotated[
    Principal,
    Depends(Authorize(Role.OWNER, Role.RESTAURANT_ADMIN, Role.MANAGER, Role.CASHIER)),
]
Guest = Annotated[Principal, Depends(Authorize(Role.GUEST))]
# A till or integration calling with its API key.
TillKey = Annotated[Principal, Depends(Authorize(Role.SYSTEM))]

# What a route for signed-in callers may answer before its own work: the credential's
# refusals, the role's, and a body or parameter out of bounds.
SIGNED_IN_REFUSALS = (
    *CREDENTIAL_REFUSALS,
    RoleForbidden,
    TenantRequired,
    MalformedJson,
    ValidationFailed,
)
# And a public route (sign-in): the body, and the per-address rate limit.
PUBLIC_REFUSALS = (MalformedJson, ValidationFailed, TooManyRequests)
