"""Till integrations: creating them with their secrets, finding the one behind a call,
recording the checks they post, and what they hold about a person.

Every integration owns an API key (role SYSTEM, confined to its restaurant): the generic POS
API and the R-Keeper server authenticate with it. An iiko integration also has a webhook
token, `miw_<tenant hex>_<secret>`, which we register with iikoCloud and iiko sends back
with every event; the tenant part lets the receiver look it up under that tenant's
row-level security. Secrets are shown once.
"""

from __future__ import annotations

import hmac
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from maxloyalty.audit.service import record
from maxloyalty.guests.models import GuestCard
from maxloyalty.identity.models import ApiKey
from maxloyalty.identity.principal import Principal, Role
from maxloyalty.identity.service import revocation
from maxloyalty.identity.service.api_keys import (
    IssuedKey,
    create_key,
    key_hash,
    key_revoked,
    key_suspended,
    revoke_key,
    tenant_named,
)
from maxloyalty.integrations.pos.errors import (
    InvalidWebhookToken,
    PosIntegrationInactive,
    PosIntegrationNotFound,
    PosIntegrationRequired,
    PosSystemMismatch,
)
from maxloyalty.integrations.pos.models import (
    PosEvent,
    PosIntegration,
    PosSync,
    PosSystem,
    PosTransaction,
    PosTransactionStatus,
)
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.ids import uuid7
from maxloyalty.kit.pagination import PageParams, make_page, paginate, paginate_newest
from maxloyalty.kit.timestamps import rfc3339
from maxloyalty.ledger.models import TxChannel
from maxloyalty.ledger.service.idempotency import Replay, claim, request_hash
from maxloyalty.ledger.service.operations import Context, open_context
from maxloyalty.network.errors import RestaurantNotFound
from maxloyalty.network.models import Restaurant

WEBHOOK_TOKEN_PREFIX = "miw_"  # noqa: S105 - a prefix, not a secret
Logged = TypeVar("Logged", PosTransaction, PosEvent, PosSync)


class Unchanged:
    """A PATCH field left out."""


UNCHANGED = Unchanged()


@dataclass(frozen=True)
class IssuedIntegration:
    integration: PosIntegration
    key: IssuedKey
    webhook_token: str | None


def _webhook_token(tenant_id: uuid.UUID) -> str:
    return f"{WEBHOOK_TOKEN_PREFIX}{tenant_id.hex}_{secrets.token_urlsafe(32)}"


def _invalid_token() -> InvalidWebhookToken:
    return InvalidWebhookToken("The webhook token is invalid.")


def tenant_of_webhook_token(token: str) -> uuid.UUID:
    return tenant_named(token, WEBHOOK_TOKEN_PREFIX, _invalid_token())


async def _issue(
    session: AsyncSession,
    hmac_key: bytes,
    integration: PosIntegration,
    *,
    require_signature: bool,
    created_by: uuid.UUID | None,
) -> tuple[IssuedKey, str | None]:
    key = await create_key(
        session,
        hmac_key,
        tenant_id=integration.tenant_id,
        name=f"POS: {integration.name}"[:120],
        restaurant_ids=[integration.restaurant_id],
        require_signature=require_signature,
        created_by=created_by,
    )
    integration.api_key_id = key.api_key.id
    token = None
    if integration.system is PosSystem.IIKO:
        token = _webhook_token(integration.tenant_id)
        integration.webhook_secret = token
        integration.webhook_secret_hash = key_hash(hmac_key, token)
    return key, token


async def create(
    session: AsyncSession,
    hmac_key: bytes,
    *,
    tenant_id: uuid.UUID,
    restaurant_id: uuid.UUID,
    system: PosSystem,
    name: str,
    credentials: dict[str, str] | None,
    external_id: str | None,
    settings: dict[str, Any],
    hold_ttl_seconds: int,
    require_signature: bool,
    created_by: uuid.UUID | None,
) -> IssuedIntegration:
    if await session.get(Restaurant, restaurant_id) is None:
        raise RestaurantNotFound()
    integration = PosIntegration(
        id=uuid7(),
        tenant_id=tenant_id,
        restaurant_id=restaurant_id,
        system=system,
        name=name,
        credentials=json.dumps(credentials) if credentials else None,
        external_id=external_id,
        settings=settings,
        hold_ttl_seconds=hold_ttl_seconds,
    )
    key, token = await _issue(
        session, hmac_key, integration, require_signature=require_signature, created_by=created_by
    )
    session.add(integration)
    await session.flush()
    await record(
        session,
        "pos.integration_created",
        "pos_integration",
        integration.id,
        after={"system": system.value, "restaurant_id": str(restaurant_id), "name": name},
    )
    return IssuedIntegration(integration, key, token)


async def rotate(
    session: AsyncSession,
    hmac_key: bytes,
    integration: PosIntegration,
    *,
    require_signature: bool | None,
    created_by: uuid.UUID | None,
) -> IssuedIntegration:
    """New API key (the old one is revoked at once; it signs requests if the old one did,
    unless told) and, for iiko, a new webhook token, to register with iikoCloud again."""
    old = await revoke_key(session, integration.api_key_id)
    if require_signature is None:
        require_signature = old.signing_secret is not None
    key, token = await _issue(
        session, hmac_key, integration, require_signature=require_signature, created_by=created_by
    )
    await session.flush()
    await pause_key(session, integration)  # a switched-off integration's new key is paused too
    await record(session, "pos.integration_secrets_rotated", "pos_integration", integration.id)
    return IssuedIntegration(integration, key, token)


async def get(
    session: AsyncSession, integration_id: uuid.UUID, reader: Principal | None = None
) -> PosIntegration:
    """The integration (for `reader`, only one of the restaurants they may see)."""
    integration = await session.get(PosIntegration, integration_id)
    if integration is None or (
        reader is not None and not reader.can_see_restaurant(integration.restaurant_id)
    ):
        raise PosIntegrationNotFound()
    return integration


async def list_integrations(
    session: AsyncSession,
    reader: Principal,
    paging: PageParams,
    restaurant_id: uuid.UUID | None = None,
) -> tuple[list[PosIntegration], str | None]:
    """One page of the integrations `reader` may see (a manager: their restaurants' tills)."""
    query = select(PosIntegration)
    if reader.restaurant_scope is not None:
        query = query.where(PosIntegration.restaurant_id.in_(reader.restaurant_scope))
    if restaurant_id is not None:
        query = query.where(PosIntegration.restaurant_id == restaurant_id)
    found = list(await session.scalars(paginate(query, PosIntegration.id, paging)))
    return make_page(found, paging)


async def update_integration(
    session: AsyncSession,
    integration_id: uuid.UUID,
    changes: dict[str, Any],
    credentials: str | Unchanged | None = UNCHANGED,
) -> PosIntegration:
    """Change what was given (`settings` merged as a JSON merge patch: null removes a
    setting; `credentials`, as JSON, None to clear them); switched off, the integration's
    key stops working everywhere within a second."""
    row = await get(session, integration_id)
    if "settings" in changes:
        merged = row.settings | changes["settings"]
        changes["settings"] = {name: value for name, value in merged.items() if value is not None}
    for name, value in changes.items():
        setattr(row, name, value)
    if not isinstance(credentials, Unchanged):
        row.credentials = credentials
    await pause_key(session, row)
    await session.flush()
    await record(
        session,
        "pos.integration_updated",
        "pos_integration",
        row.id,
        after=changes | {"credentials_changed": not isinstance(credentials, Unchanged)},
    )
    return row


async def log_page(
    session: AsyncSession,
    model: type[Logged],
    integration_id: uuid.UUID,
    reader: Principal,
    paging: PageParams,
    **filters: Any,
) -> tuple[list[Logged], str | None]:
    """One page of an integration's log, newest first, with the filters that were given."""
    await get(session, integration_id, reader)
    query = select(model).where(model.integration_id == integration_id)
    for name, value in filters.items():
        if value is not None:
            query = query.where(getattr(model, name) == value)
    rows = list(await session.scalars(paginate_newest(query, model.id, paging)))
    return make_page(rows, paging)


async def pause_key(session: AsyncSession, integration: PosIntegration) -> ApiKey:
    """Keep the integration's key in step with it: suspended while it is switched off."""
    key = await session.get(ApiKey, integration.api_key_id)
    assert key is not None
    suspended = key.suspended_at
    if integration.is_active:
        key.suspended_at = None
    elif key.suspended_at is None:
        key.suspended_at = utcnow()
    if key.suspended_at != suspended:
        revocation.changed(session)
    return key


def credentials_of(integration: PosIntegration) -> dict[str, str]:
    return dict(json.loads(integration.credentials)) if integration.credentials else {}


def _usable(integration: PosIntegration | None) -> PosIntegration:
    if integration is None:
        raise PosIntegrationRequired()
    if not integration.is_active:
        raise PosIntegrationInactive()
    return integration


async def of_caller(
    session: AsyncSession, principal: Principal, system: PosSystem | None = None
) -> PosIntegration:
    """The integration whose API key made this call."""
    integration = await session.scalar(
        select(PosIntegration).where(PosIntegration.api_key_id == principal.subject)
    )
    # A process may still remember the caller's key for a moment after it was switched off
    # or rotated out: refuse as its key check would, whichever process notices first.
    if integration is not None and not integration.is_active:
        raise key_suspended()
    if integration is None:
        key = await session.get(ApiKey, principal.subject)
        if key is not None and key.revoked_at is not None:
            raise key_revoked()
    integration = _usable(integration)
    if system is not None and integration.system is not system:
        raise PosSystemMismatch(f"This endpoint is for {system.value} integrations.")
    return integration


async def of_webhook_token(session: AsyncSession, hmac_key: bytes, token: str) -> PosIntegration:
    """The iiko integration a webhook token belongs to; `session` bound to its tenant."""
    integration = await session.scalar(
        select(PosIntegration).where(
            PosIntegration.webhook_secret_hash == key_hash(hmac_key, token)
        )
    )
    # The lookup was by a keyed hash; the stored token is still compared in constant time.
    if integration is None or not hmac.compare_digest(
        (integration.webhook_secret or "").encode(), token.encode()
    ):
        raise _invalid_token()
    return _usable(integration)


async def till_context(
    session: AsyncSession,
    principal: Principal,
    now: datetime,
    system: PosSystem | None = None,
) -> tuple[PosIntegration, Context]:
    """The calling integration, and the ledger context its operations run in."""
    integration = await of_caller(session, principal, system)
    return integration, await ledger_context(session, integration, now)


# A till's rows name its integration's kind, whichever way it reached us: an iikoFront
# plugin on the generic POS API is as much the iiko till as iiko's own webhooks.
CHANNELS = {
    PosSystem.CUSTOM: TxChannel.POS_API,
    PosSystem.IIKO: TxChannel.IIKO,
    PosSystem.RKEEPER: TxChannel.RKEEPER,
}


async def ledger_context(
    session: AsyncSession, integration: PosIntegration, now: datetime
) -> Context:
    """The ledger context of the integration's operations, in its restaurant."""
    return await open_context(
        session,
        principal_of(integration),
        integration.restaurant_id,
        now,
        CHANNELS[integration.system],
    )


def principal_of(integration: PosIntegration) -> Principal:
    """Who a till's operations are by: the integration itself (not its current API key),
    so idempotency keys outlive a key rotation and share one namespace whichever way the
    till reaches us (its API calls, FarCards, iiko's webhooks)."""
    return Principal(
        subject=integration.id,
        role=Role.SYSTEM,
        tenant_id=integration.tenant_id,
        restaurant_ids=frozenset({integration.restaurant_id}),
    )


async def record_check(
    session: AsyncSession,
    integration: PosIntegration,
    answer: dict[str, Any],
    *,
    order_id: str,
    check_amount: int,
    items: list[dict[str, Any]] | None = None,
    payments: list[dict[str, Any]] | None = None,
    raw: str | None = None,
    discount: int | None = None,
) -> bool:
    """Keep what the till sent next to what the ledger made of it; once per operation, so
    a re-sent check adds nothing (and the answer is False). `discount`: the till's own
    figure, when it gave the discount (default: the ledger's)."""
    result = await session.execute(
        insert(PosTransaction)
        .values(
            id=uuid7(),
            tenant_id=integration.tenant_id,
            integration_id=integration.id,
            card_id=uuid.UUID(answer["card_id"]),
            ledger_operation_id=uuid.UUID(answer["operation_id"]),
            operation=answer["type"],
            order_id=order_id,
            check_number=order_id,
            check_amount=check_amount,
            items=items or [],
            payments=payments or [],
            raw=raw,
            points_accrued=answer.get("accrued", 0),
            points_redeemed=answer.get("redeemed", 0),
            discount_applied=answer.get("discount", 0) if discount is None else discount,
            status=PosTransactionStatus.PROCESSED,
        )
        .on_conflict_do_nothing(index_elements=["ledger_operation_id"])
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def record_refusal(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    integration_id: uuid.UUID,
    *,
    order_id: str,
    check_amount: int,
    raw: str | None,
    error: str,
) -> None:
    """A check the till sent and we refused, for the admin to see (every attempt)."""
    session.add(
        PosTransaction(
            tenant_id=tenant_id,
            integration_id=integration_id,
            operation="REFUSED",
            order_id=order_id,
            check_number=order_id,
            check_amount=check_amount,
            raw=raw,
            status=PosTransactionStatus.FAILED,
            error=error[:1000],
        )
    )
    await session.flush()


async def record_note(
    session: AsyncSession,
    integration: PosIntegration,
    card: GuestCard,
    *,
    business_key: str,
    order_id: str,
    items: list[dict[str, Any]],
    payments: list[dict[str, Any]],
    raw: str | None,
    discount: int,
) -> None:
    """A check part with nothing for the ledger to book (only the till's own discount or
    bonus), kept once however often it is re-sent: its business key is claimed like an
    operation's, with no ledger rows."""
    claimed = await claim(
        session,
        integration.tenant_id,
        kind="NOTE",
        fingerprint=request_hash(business_key),
        idempotency_key=None,
        business_key=business_key,
        created_by=integration.id,
    )
    if isinstance(claimed, Replay):
        return
    claimed.card_id, claimed.response, claimed.status_code = card.id, {"recorded": True}, 200
    session.add(
        PosTransaction(
            tenant_id=integration.tenant_id,
            integration_id=integration.id,
            card_id=card.id,
            ledger_operation_id=claimed.id,
            operation="NOTE",
            order_id=order_id,
            check_number=order_id,
            check_amount=0,
            items=items,
            payments=payments,
            raw=raw,
            discount_applied=discount,
            status=PosTransactionStatus.PROCESSED,
        )
    )
    await session.flush()


def _cards_of(user_id: uuid.UUID) -> Select[uuid.UUID]:
    return select(GuestCard.id).where(GuestCard.user_id == user_id)


def _events_of(user_id: uuid.UUID, phone_hash: str | None) -> ColumnElement[bool]:
    """Events about the person: naming their phone, or matched to one of their cards."""
    cards = PosEvent.card_id.in_(_cards_of(user_id))
    return or_(cards, PosEvent.phone_hash == phone_hash) if phone_hash else cards


async def personal_orders(
    session: AsyncSession, user_id: uuid.UUID, phone_hash: str | None
) -> list[dict[str, Any]]:
    """What iiko sent about the person with their orders (the personal fields kept apart)."""
    events = await session.execute(
        select(PosEvent.id, PosEvent.external_id, PosEvent.received_at, PosEvent.personal)
        .where(_events_of(user_id, phone_hash))
        .order_by(PosEvent.received_at)
    )
    return [
        {
            "event_id": str(event_id),
            "order_id": order_id,
            "received_at": rfc3339(received_at),
            "personal": json.loads(personal),
        }
        for event_id, order_id, received_at, personal in events
        if personal  # none left once erased
    ]


async def forget_person(session: AsyncSession, user_id: uuid.UUID, phone_hash: str | None) -> None:
    """Erase the person from what this network's tills sent: the personal fields and phone
    index of their iiko events, the XML of their cards' checks. Amounts, lines and payments
    stay with the ledger; a replayed event can no longer find them."""
    await session.execute(
        update(PosEvent)
        .where(
            _events_of(user_id, phone_hash),
            or_(PosEvent.personal.is_not(None), PosEvent.phone_hash.is_not(None)),
        )
        .values(personal=None, phone_hash=None)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(PosTransaction)
        .where(
            PosTransaction.card_id.in_(_cards_of(user_id)),
            PosTransaction.raw.is_not(None),
        )
        .values(raw=None)
        .execution_options(synchronize_session=False)
    )
