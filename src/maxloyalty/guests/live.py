"""A card's balance, pending points and level, published once its transaction commits.

Every path that changes them (cashier, tills, transfers, rewards) goes through the ORM, so
one flush listener sees them all and reads the values from the session's own objects: no
query is added. The daily job's set-based expiry stages what its UPDATE returns (`stage`).
A card changed several times in a transaction is published
once, with its last values; a rollback publishes nothing (see `kit.live`).

Topics: `card:{card_id}`, and `guest:{tenant_id}:{user_id}` for a page following every
card a guest holds in one network. Messages carry no personal data."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import structlog
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, UOWTransaction

from maxloyalty.guests.models import GuestCard
from maxloyalty.kit import live
from maxloyalty.kit.clock import utcnow
from maxloyalty.kit.timestamps import rfc3339

log = structlog.get_logger(__name__)

WATCHED = ("balance", "pending_balance", "level_id")


def card_topic(card_id: uuid.UUID) -> str:
    return f"card:{card_id}"


def guest_topic(tenant_id: uuid.UUID, user_id: uuid.UUID) -> str:
    return f"guest:{tenant_id}:{user_id}"


def card_message(values: Mapping[Any, Any], at: str) -> live.Message:
    """`{card_id, balance, pending_balance, level_id, at}`: ids as strings, `at` RFC 3339."""
    level_id = values["level_id"]
    return {
        "card_id": str(values["id"]),
        "balance": values["balance"],
        "pending_balance": values["pending_balance"],
        "level_id": str(level_id) if level_id is not None else None,
        "at": at,
    }


def stage(session: Session, values: Mapping[Any, Any], at: str) -> None:
    """Publish a card's new values (its row: `id`, `tenant_id`, `user_id` and the watched
    columns) once the session's transaction commits."""
    message = card_message(values, at)
    live.publish_after_commit(
        session,
        ("card", values["id"]),
        [
            (card_topic(values["id"]), message),
            (guest_topic(values["tenant_id"], values["user_id"]), message),
        ],
    )


@event.listens_for(Session, "after_flush")
def _stage_changed_cards(session: Session, _flush: UOWTransaction) -> None:
    """After a flush the session still lists what it wrote, with each attribute's history.
    A card just issued is not published: no page follows it yet."""
    if live.broker_of(session) is None:
        return
    at: str | None = None
    for card in session.dirty:
        if not isinstance(card, GuestCard):
            continue
        state = inspect(card)
        if not any(state.attrs[name].history.has_changes() for name in WATCHED):
            continue
        values = state.dict  # what was just written; reading it never loads
        if any(name not in values for name in (*WATCHED, "id", "tenant_id", "user_id")):
            log.warning("live_card_unreadable", card_id=str(values.get("id")))
            continue  # expired meanwhile: nothing to tell without a query
        at = at or rfc3339(utcnow())
        stage(session, values, at)
