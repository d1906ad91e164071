"""Programme rules: which programme applies where, levels, and what a check earns."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from maxloyalty.audit.service import record, snapshot
from maxloyalty.kit import jobs
from maxloyalty.kit.pagination import PageParams, paginate
from maxloyalty.kit.refdata import remembered
from maxloyalty.loyalty.errors import (
    InvalidLevels,
    LogoInvalid,
    LogoTypeUnsupported,
    ProgramExists,
    ProgramNotFound,
    RequiredSetting,
)
from maxloyalty.loyalty.models import (
    LOGO_TYPES,
    BrandLogo,
    CardMode,
    LoyaltyLevel,
    LoyaltySystem,
    ProgramType,
    Rounding,
)
from maxloyalty.loyalty.schemas import CardDesign, LevelIn, ProgramCreate
from maxloyalty.network.errors import RestaurantNotFound
from maxloyalty.network.models import Restaurant

# Handled by `ledger.tasks`: cards move to the level their spend earns under the new rules.
REEVALUATE_JOB = "loyalty.reevaluate_levels"
# Settings a PATCH may clear with null; null for any other is refused (the PATCH rule).
_NULLABLE_SETTINGS = frozenset({"discount_cap_percent", "rolling_days"})
KOPECKS_PER_POINT = 100  # 1 point = 1 ruble of value

# name, min spend in rubles, percentage, birthday bonus, colour
DEFAULT_LEVELS = [
    ("BRONZE", 0, 5, 100, "#CD7F32"),
    ("SILVER", 30_000, 10, 200, "#C0C0C0"),
    ("GOLD", 100_000, 15, 300, "#FFD700"),
    ("PLATINUM", 250_000, 20, 500, "#E5E4E2"),
    ("VIP", 500_000, 25, 1000, "#8B0000"),
]


@dataclass(frozen=True)
class LevelSpec:
    name: str
    min_spent: int
    percentage: Decimal
    birthday_bonus: int = 0
    purchase_bonus: int = 0
    free_item_code: str | None = None
    color: str | None = None
    icon_url: str | None = None


def default_levels() -> list[LevelSpec]:
    return [
        LevelSpec(name, rubles * 100, Decimal(pct), birthday, color=color)
        for name, rubles, pct, birthday, color in DEFAULT_LEVELS
    ]


# A programme with its active levels, in order, and its logo (without the bytes): what
# its answers show.
Program = tuple[LoyaltySystem, list[LoyaltyLevel], BrandLogo | None]


async def _with_levels(session: AsyncSession, system: LoyaltySystem) -> Program:
    return system, await levels_of(session, system.id), await logo_of(session, system.id)


async def logo_of(session: AsyncSession, system_id: uuid.UUID) -> BrandLogo | None:
    """The programme's logo, without its bytes."""
    return await session.scalar(select(BrandLogo).where(BrandLogo.loyalty_system_id == system_id))


def level_specs(levels: list[LevelIn]) -> list[LevelSpec]:
    return [LevelSpec(**level.model_dump()) for level in levels]


async def open_program(
    session: AsyncSession, tenant_id: uuid.UUID, request: ProgramCreate
) -> Program:
    """A programme as an admin asks for it: the settings given, the defaults for the rest
    (the five default levels when none are given)."""
    settings = request.model_dump(
        exclude={"type", "mode", "restaurant_id", "levels"}, exclude_none=True
    )
    system = await create_program(
        session,
        tenant_id,
        type=request.type,
        mode=request.mode,
        restaurant_id=request.restaurant_id,
        levels=level_specs(request.levels) if request.levels else None,
        **settings,
    )
    return await _with_levels(session, system)


async def create_program(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    type: ProgramType,
    mode: CardMode,
    restaurant_id: uuid.UUID | None = None,
    levels: list[LevelSpec] | None = None,
    **settings: object,
) -> LoyaltySystem:
    if restaurant_id is not None and await session.get(Restaurant, restaurant_id) is None:
        raise RestaurantNotFound()
    existing = await session.scalar(
        select(LoyaltySystem.id).where(
            LoyaltySystem.restaurant_id.is_(None)
            if restaurant_id is None
            else LoyaltySystem.restaurant_id == restaurant_id
        )
    )
    if existing is not None:
        raise ProgramExists()
    system = LoyaltySystem(
        tenant_id=tenant_id, restaurant_id=restaurant_id, type=type, mode=mode, **settings
    )
    session.add(system)
    await session.flush()
    await _write_levels(session, system, levels or default_levels())
    await record(session, "program.created", "loyalty_system", system.id, after=snapshot(system))
    return system


async def _write_levels(
    session: AsyncSession, system: LoyaltySystem, levels: list[LevelSpec]
) -> list[LoyaltyLevel]:
    """Make `levels` the programme's levels: matched by name, updated in place; new ones
    added; the rest retired (kept for history). Cards are re-evaluated by a job."""
    thresholds = [level.min_spent for level in levels]
    names = [level.name for level in levels]
    if not levels or thresholds[0] != 0 or thresholds != sorted(set(thresholds)):
        raise InvalidLevels()
    if len(set(names)) != len(names):
        raise InvalidLevels("Level names must differ.")
    existing = {
        level.name: level
        for level in await session.scalars(
            select(LoyaltyLevel).where(LoyaltyLevel.loyalty_system_id == system.id)
        )
    }
    rows = []
    for position, spec in enumerate(levels, 1):
        row = existing.pop(spec.name, None) or LoyaltyLevel(
            tenant_id=system.tenant_id, loyalty_system_id=system.id
        )
        for field, value in spec.__dict__.items():
            setattr(row, field, value)
        row.position, row.is_active = position, True
        session.add(row)
        rows.append(row)
    for i, retired in enumerate(existing.values(), 1):
        retired.is_active, retired.position = False, -i
    await session.flush()
    return rows


async def get_program(session: AsyncSession, program_id: uuid.UUID) -> LoyaltySystem:
    system = await session.get(LoyaltySystem, program_id)
    if system is None:
        raise ProgramNotFound()
    return system


async def list_programs(session: AsyncSession, paging: PageParams) -> list[Program]:
    """A page of programmes, each with its active levels and its logo (three queries,
    whatever the page)."""
    systems = list(await session.scalars(paginate(select(LoyaltySystem), LoyaltySystem.id, paging)))
    levels: dict[uuid.UUID, list[LoyaltyLevel]] = {s.id: [] for s in systems}
    for level in await session.scalars(
        select(LoyaltyLevel)
        .where(LoyaltyLevel.loyalty_system_id.in_(levels), LoyaltyLevel.is_active.is_(True))
        .order_by(LoyaltyLevel.position)
    ):
        levels[level.loyalty_system_id].append(level)
    logos = {
        logo.loyalty_system_id: logo
        for logo in await session.scalars(
            select(BrandLogo).where(BrandLogo.loyalty_system_id.in_(levels))
        )
    }
    return [(s, levels[s.id], logos.get(s.id)) for s in systems]


async def _reevaluate_later(session: AsyncSession, system: LoyaltySystem) -> None:
    await jobs.enqueue(
        session, REEVALUATE_JOB, {"tenant_id": str(system.tenant_id), "program_id": str(system.id)}
    )


async def update_program(
    session: AsyncSession, program_id: uuid.UUID, changes: dict[str, Any]
) -> Program:
    """Apply the settings given (null clears a setting that may be unset, and is refused
    for any other); when what decides a level changes, every card is re-evaluated in the
    background."""
    system = await get_program(session, program_id)
    before = snapshot(system)
    for field, value in changes.items():
        if value is None and field not in _NULLABLE_SETTINGS:
            raise RequiredSetting(f"{field} cannot be null.")
        setattr(system, field, value)
    await session.flush()
    await session.refresh(system)
    await record(
        session,
        "program.updated",
        "loyalty_system",
        system.id,
        before=before,
        after=snapshot(system),
    )
    if (
        before["level_metric"] != system.level_metric.value
        or before["rolling_days"] != system.rolling_days
    ):
        await _reevaluate_later(session, system)
    return await _with_levels(session, system)


async def replace_levels(
    session: AsyncSession, program_id: uuid.UUID, levels: list[LevelSpec]
) -> Program:
    """Replace the levels; every card is then re-evaluated in the background."""
    system = await get_program(session, program_id)
    before = [
        (lv.name, lv.min_spent, str(lv.percentage)) for lv in await levels_of(session, system.id)
    ]
    rows = await _write_levels(session, system, levels)
    after = [(lv.name, lv.min_spent, str(lv.percentage)) for lv in rows]
    await record(
        session,
        "program.levels_replaced",
        "loyalty_system",
        system.id,
        before={"levels": before},
        after={"levels": after},
    )
    await _reevaluate_later(session, system)
    return await _with_levels(session, system)


async def program_for(session: AsyncSession, restaurant_id: uuid.UUID) -> LoyaltySystem:
    """The restaurant's own programme, else the network's. The restaurant must be one of
    this tenant's (foreign keys would not stop a foreign one: they bypass RLS). Kept per
    process until the programme or the restaurant changes (`kit.refdata`)."""

    async def load() -> LoyaltySystem | None:
        if await session.get(Restaurant, restaurant_id) is None:
            raise RestaurantNotFound()
        return await session.scalar(
            select(LoyaltySystem)
            .where(
                or_(
                    LoyaltySystem.restaurant_id == restaurant_id,
                    LoyaltySystem.restaurant_id.is_(None),
                )
            )
            .order_by(LoyaltySystem.restaurant_id.is_(None))
            .limit(1)
        )

    system = await remembered(session, ("program", restaurant_id), load)
    if system is None:
        raise ProgramNotFound("No loyalty programme is set up here.")
    return system


# The programme whose design the network's pages show: the network's own (the one for
# every restaurant), or the first restaurant programme's when the network has none.
_NETWORK_FIRST = (LoyaltySystem.restaurant_id.is_not(None), LoyaltySystem.created_at)


async def network_design(session: AsyncSession) -> CardDesign:
    """The card design of the network's pages."""
    stored = await session.scalar(select(LoyaltySystem.design).order_by(*_NETWORK_FIRST))
    return CardDesign.of(stored or {})


async def network_logo(session: AsyncSession, *, with_data: bool = False) -> BrandLogo | None:
    """The logo of the programme whose design the network's pages show, if it has one
    (its bytes loaded only when asked for)."""
    shown = select(LoyaltySystem.id).order_by(*_NETWORK_FIRST).limit(1).scalar_subquery()
    query = select(BrandLogo).where(BrandLogo.loyalty_system_id == shown)
    if with_data:
        query = query.options(undefer(BrandLogo.data))
    return await session.scalar(query)


def logo_type(content_type: str) -> str:
    """The logo's media type from its Content-Type header (parameters dropped)."""
    kind = content_type.split(";")[0].strip().lower()
    if kind not in LOGO_TYPES:
        raise LogoTypeUnsupported()
    return kind


def _looks_like(kind: str, data: bytes) -> bool:
    """The image format's magic number opens the bytes."""
    if kind == "image/png":
        return data.startswith(b"\x89PNG\r\n\x1a\n")
    if kind == "image/jpeg":
        return data.startswith(b"\xff\xd8\xff")
    return data[:4] == b"RIFF" and data[8:12] == b"WEBP"


def _logo_facts(logo: BrandLogo | None) -> dict[str, Any] | None:
    """What the activity log keeps of a logo: never the bytes."""
    if logo is None:
        return None
    return {"content_type": logo.content_type, "size": logo.size, "sha256": logo.sha256}


async def set_logo(session: AsyncSession, program_id: uuid.UUID, kind: str, data: bytes) -> Program:
    """Make `data` (of media type `kind`, from `logo_type`) the programme's logo, in place
    of the one it had. The caller bounds the size (`MAX_LOGO_BYTES`)."""
    system = await get_program(session, program_id)
    if not _looks_like(kind, data):
        raise LogoInvalid(f"The body is not a {kind.removeprefix('image/').upper()} image.")
    logo = await logo_of(session, system.id)
    before = _logo_facts(logo)
    if logo is None:
        logo = BrandLogo(tenant_id=system.tenant_id, loyalty_system_id=system.id)
        session.add(logo)
    logo.content_type, logo.data, logo.size = kind, data, len(data)
    logo.sha256 = hashlib.sha256(data).hexdigest()
    await session.flush()
    await record(
        session,
        "program.logo_set",
        "loyalty_system",
        system.id,
        before=before,
        after=_logo_facts(logo),
    )
    return system, await levels_of(session, system.id), logo


async def remove_logo(session: AsyncSession, program_id: uuid.UUID) -> None:
    """Forget the programme's logo; removing one that is not there changes nothing."""
    system = await get_program(session, program_id)
    logo = await logo_of(session, system.id)
    if logo is None:
        return
    before = _logo_facts(logo)
    await session.delete(logo)
    await session.flush()
    await record(session, "program.logo_removed", "loyalty_system", system.id, before=before)


async def levels_of(session: AsyncSession, system_id: uuid.UUID) -> list[LoyaltyLevel]:
    """The programme's active levels, lowest first (kept per process until they change)."""

    async def load() -> list[LoyaltyLevel]:
        return list(
            await session.scalars(
                select(LoyaltyLevel)
                .where(
                    LoyaltyLevel.loyalty_system_id == system_id, LoyaltyLevel.is_active.is_(True)
                )
                .order_by(LoyaltyLevel.position)
            )
        )

    return await remembered(session, ("levels", system_id), load) or []


def level_for(levels: list[LoyaltyLevel], spent: int) -> LoyaltyLevel | None:
    reached = [level for level in levels if level.min_spent <= spent]
    return reached[-1] if reached else None


def next_level(levels: list[LoyaltyLevel], current: LoyaltyLevel | None) -> LoyaltyLevel | None:
    position = current.position if current else 0
    higher = [level for level in levels if level.position > position]
    return higher[0] if higher else None


def percent_of(amount: int, percentage: Decimal) -> int:
    """floor(amount × percentage / 100), exactly (no floats)."""
    return int((Decimal(amount) * percentage / 100).to_integral_value(ROUND_FLOOR))


_ROUNDING = {
    Rounding.FLOOR: ROUND_FLOOR,
    Rounding.HALF_UP: ROUND_HALF_UP,
    Rounding.CEILING: ROUND_CEILING,
}


def accrual_points(
    paid_kopecks: int, level: LoyaltyLevel | None, rounding: Rounding = Rounding.FLOOR
) -> int:
    """Points for money paid: paid × level % / 100 in rubles, rounded as the programme says
    (down by default), plus the level's per-purchase bonus."""
    if level is None or paid_kopecks <= 0:
        return 0
    exact = Decimal(paid_kopecks) * level.percentage / 100 / KOPECKS_PER_POINT
    return int(exact.to_integral_value(_ROUNDING[rounding])) + level.purchase_bonus


def discount_percent(system: LoyaltySystem, level: LoyaltyLevel | None) -> Decimal:
    pct = level.percentage if level else Decimal(0)
    if system.discount_cap_percent is not None:
        pct = min(pct, system.discount_cap_percent)
    return pct


def max_redeemable(system: LoyaltySystem, free_points: int, check_kopecks: int) -> int:
    """Points this check may take: a share of the check, never above the points free to
    spend (the balance less what other orders hold)."""
    by_share = percent_of(check_kopecks, system.max_redeem_percent) // KOPECKS_PER_POINT
    return max(0, min(free_points, by_share))
