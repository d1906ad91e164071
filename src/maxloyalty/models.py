"""Every ORM model, imported in one place so metadata (and Alembic) sees the whole schema."""

from maxloyalty.audit.models import ActivityLog
from maxloyalty.guests.models import CardRotatingCode, GuestCard, GuestChild, GuestProfile
from maxloyalty.identity.models import (
    ApiKey,
    Consent,
    OtpCode,
    User,
    UserPermission,
    UserRole,
    UserSession,
)
from maxloyalty.integrations.pos.models import PosEvent, PosIntegration, PosSync, PosTransaction
from maxloyalty.integrations.telegram.models import TelegramBot, TelegramChat
from maxloyalty.integrations.webhooks.models import WebhookDelivery, WebhookEndpoint
from maxloyalty.kit.events import IntegrationEvent
from maxloyalty.kit.models import Base
from maxloyalty.ledger.models import (
    LedgerOperation,
    LotAllocation,
    PointHold,
    PointLot,
    PointTransaction,
)
from maxloyalty.loyalty.models import BrandLogo, LoyaltyLevel, LoyaltySystem, TierChange
from maxloyalty.network.models import PointOfSale, Restaurant, Tenant
from maxloyalty.rewards.models import RedemptionItem

metadata = Base.metadata

__all__ = [
    "ActivityLog",
    "ApiKey",
    "BrandLogo",
    "CardRotatingCode",
    "Consent",
    "GuestCard",
    "GuestChild",
    "GuestProfile",
    "IntegrationEvent",
    "LedgerOperation",
    "LotAllocation",
    "LoyaltyLevel",
    "LoyaltySystem",
    "OtpCode",
    "PointHold",
    "PointLot",
    "PointOfSale",
    "PointTransaction",
    "PosEvent",
    "PosIntegration",
    "PosSync",
    "PosTransaction",
    "RedemptionItem",
    "Restaurant",
    "TelegramBot",
    "TelegramChat",
    "Tenant",
    "TierChange",
    "User",
    "UserPermission",
    "UserRole",
    "UserSession",
    "WebhookDelivery",
    "WebhookEndpoint",
    "metadata",
]
