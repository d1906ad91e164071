"""Every ORM model, imported in one place so metadata (and Alembic) sees the whole schema."""

from maxloyalty.audit.models import ActivityLog
from maxloyalty.identity.models import (
    ApiKey,
    Consent,
    OtpCode,
    User,
    UserPermission,
    UserRole,
    UserSession,
)
from maxloyalty.kit.events import IntegrationEvent
from maxloyalty.kit.models import Base
from maxloyalty.network.models import PointOfSale, Restaurant, Tenant

metadata = Base.metadata

__all__ = [
    "ActivityLog",
    "ApiKey",
    "Consent",
    "IntegrationEvent",
    "OtpCode",
    "PointOfSale",
    "Restaurant",
    "Tenant",
    "User",
    "UserPermission",
    "UserRole",
    "UserSession",
    "metadata",
]
