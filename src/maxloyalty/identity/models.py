"""Users, their roles per tenant, fine-grained grants, sessions, API keys, one-time codes."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint, Uuid
from sqlalchemy.dialects.postgresql import ARRAY, INET
from sqlalchemy.orm import Mapped, mapped_column

from maxloyalty.identity.principal import Role
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.crypto import EncryptedText
from maxloyalty.kit.models import Base, TenantOwned, Timestamps, UUIDPrimaryKey, str_enum

_role = str_enum(Role, "role", 24)


def _uuid_list() -> Mapped[list[uuid.UUID]]:
    return mapped_column(ARRAY(Uuid()), default=list)


class User(UUIDPrimaryKey, Timestamps, Base):
    """A person: staff member, guest, or platform owner. Global (not tenant-owned): one
    person may work for or be a guest of several networks. Phone and email are stored
    encrypted, found through their blind indexes."""

    __tablename__ = "users"

    phone: Mapped[str | None] = mapped_column("phone_encrypted", EncryptedText(200))
    phone_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column("email_encrypted", EncryptedText(400))
    email_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    telegram_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    role: Mapped[Role] = mapped_column(_role)
    is_active: Mapped[bool] = mapped_column(default=True)
    is_blocked: Mapped[bool] = mapped_column(default=False)
    blocked_reason: Mapped[str | None] = mapped_column(String(500))
    phone_verified: Mapped[bool] = mapped_column(default=False)
    email_verified: Mapped[bool] = mapped_column(default=False)
    last_login_at: Mapped[datetime | None]
    erased_at: Mapped[datetime | None]


class UserRole(UUIDPrimaryKey, TenantOwned, Base):
    """The role a user holds in one tenant; MANAGER and CASHIER see `restaurant_ids` only."""

    __tablename__ = "user_roles"
    # A person may be, say, a cashier and a guest of the same network.
    __table_args__ = (UniqueConstraint("tenant_id", "user_id", "role"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[Role] = mapped_column(_role)
    restaurant_ids: Mapped[list[uuid.UUID]] = _uuid_list()
    is_active: Mapped[bool] = mapped_column(default=True)
    blocked_reason: Mapped[str | None] = mapped_column(String(500))
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)


class UserPermission(UUIDPrimaryKey, TenantOwned, Base):
    """A timed grant beyond the role, e.g. `write:points` on some restaurants."""

    __tablename__ = "user_permissions"
    __table_args__ = (Index("ix_user_permissions_lookup", "tenant_id", "user_id", "permission"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    permission: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str | None] = mapped_column(String(32))
    resource_ids: Mapped[list[uuid.UUID]] = _uuid_list()
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
    granted_by_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    revoked_at: Mapped[datetime | None]
    revoked_by_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    expires_at: Mapped[datetime | None]


class SessionEnd(enum.StrEnum):
    LOGOUT = "LOGOUT"
    REUSE_DETECTED = "REUSE_DETECTED"
    REVOKED = "REVOKED"


class UserSession(UUIDPrimaryKey, Base):
    """One refresh token. Rotation replaces it with a new row of the same family; showing a
    replaced token again revokes the family (it was stolen, or the client is confused)."""

    __tablename__ = "user_sessions"
    __table_args__ = (Index("ix_user_sessions_family", "family_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tenants.id"), index=True)
    role: Mapped[Role] = mapped_column(_role)
    family_id: Mapped[uuid.UUID]
    refresh_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    ip_address: Mapped[str | None] = mapped_column(INET)
    user_agent: Mapped[str | None] = mapped_column(String(500))
    device_fingerprint: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)
    replaced_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[SessionEnd | None] = mapped_column(str_enum(SessionEnd, "session_end"))

    @property
    def is_active(self) -> bool:
        return self.replaced_at is None and self.revoked_at is None


class ApiKey(UUIDPrimaryKey, TenantOwned, Timestamps, Base):
    """A POS or integration credential (role SYSTEM), shown once and stored as an HMAC."""

    __tablename__ = "api_keys"

    name: Mapped[str] = mapped_column(String(120))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    restaurant_ids: Mapped[list[uuid.UUID]] = _uuid_list()
    signing_secret: Mapped[str | None] = mapped_column(EncryptedText(300))
    created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # Paused with its POS integration (switched off, not revoked: it may come back).
    suspended_at: Mapped[datetime | None]


class OtpCode(UUIDPrimaryKey, TenantOwned, Base):
    """A one-time code sent by SMS: stored hashed, single use, limited attempts."""

    __tablename__ = "otp_codes"
    __table_args__ = (Index("ix_otp_codes_phone", "tenant_id", "phone_hash", "created_at"),)

    phone_hash: Mapped[str] = mapped_column(String(64))
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    consumed_at: Mapped[datetime | None]
    ip_address: Mapped[str | None] = mapped_column(INET)
    registration: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ConsentKind(enum.StrEnum):
    PRIVACY_POLICY = "PRIVACY_POLICY"
    PERSONAL_DATA = "PERSONAL_DATA"
    MARKETING = "MARKETING"


class Consent(UUIDPrimaryKey, TenantOwned, Base):
    """A guest's consent decision (152-FZ): append-only, the latest per kind wins."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_user", "tenant_id", "user_id", "kind"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[ConsentKind] = mapped_column(str_enum(ConsentKind, "consent_kind", 24))
    granted: Mapped[bool]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    ip_address: Mapped[str | None] = mapped_column(INET)
    source: Mapped[str] = mapped_column(String(32))
