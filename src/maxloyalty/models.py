"""Every ORM model, imported in one place so metadata (and Alembic) sees the whole schema."""

from maxloyalty.audit.models import ActivityLog
from maxloyalty.kit.events import IntegrationEvent
from maxloyalty.kit.models import Base
from maxloyalty.network.models import PointOfSale, Restaurant, Tenant

metadata = Base.metadata

__all__ = ["ActivityLog", "IntegrationEvent", "PointOfSale", "Restaurant", "Tenant", "metadata"]
