"""The floor of the bench: the least a FastAPI + asyncpg app must do for the till's two
kinds of call, served like the API, so `app ÷ floor` is what the app costs beyond that.

- `POST /identify {code}`: the tenant's active card with that 6-digit code, and its balance.
- `POST /accrue {card_id, amount}`: 5 % of a check (`amount`, kopecks) in points, in one
  transaction: the card's balance raised (which locks the card, as the app locks it first),
  one `point_transactions` row and the lot it credits, so `maxloyalty ledger verify` holds
  (balance = completed transactions = active lots).

No SQLAlchemy, no auth, no idempotency, audit, outbox, levels or programme: only what the
answer needs. As the app, it works as `maxloyalty_app` with the tenant set per transaction
(`set_config(..., true)`), so row-level security applies. Round trips: 4 per lookup
(BEGIN, tenant, select, COMMIT), 6 per accrual (BEGIN, tenant, card, ledger row, lot,
COMMIT); `sql/accrue.sql` sends the same statements raw.

Usage: floor_app.py --port PORT --workers N. Env: FLOOR_DATABASE_URL (the owner's URL:
the app role is taken with `role=`, as pgbench does), FLOOR_TENANT_ID (the tenant whose
cards are looked up: the API finds it from the key), MAXLOYALTY_DB_POOL_SIZE (10, the app's:
the pool holds up to twice that, as the app's with its overflow).
"""

from __future__ import annotations

import argparse
import logging
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import asyncpg
import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

PERCENT = 5  # BRONZE's rate; the raw scripts take the same
EXPIRY_DAYS = 180  # the programme's default lifetime of a lot

_TENANT = "SELECT set_config('app.tenant_id', $1, true)"
_IDENTIFY = "SELECT id, balance FROM guest_cards WHERE code = $1 AND status = 'ACTIVE'"
_CARD = (
    "UPDATE guest_cards SET balance = balance + $2 WHERE id = $1 AND status = 'ACTIVE' "
    "RETURNING balance"
)
# The row is its own operation: there is no ledger_operations row (no idempotency here).
_LEDGER_ROW = (
    "INSERT INTO point_transactions (id, created_at, tenant_id, card_id, operation_id, type, "
    "status, amount, source, channel, check_amount, paid_amount, percentage) "
    "VALUES ($1, now(), $2, $3, $1, 'ACCRUAL', 'COMPLETED', $4, 'POS', 'POS_API', $5, $5, $6)"
)
_LOT = (
    "INSERT INTO point_lots (id, tenant_id, card_id, transaction_id, amount, remaining, "
    "created_at, activates_at, activated, expires_at) "
    f"VALUES ($1, $2, $3, $4, $5, $5, now(), now(), true, now() + interval '{EXPIRY_DAYS} days')"
)


class Identify(BaseModel):
    code: Annotated[str, Field(pattern=r"^[0-9]{6}$")]


class Accrue(BaseModel):
    card_id: uuid.UUID
    amount: Annotated[int, Field(gt=0)]


async def _keep(_connection: asyncpg.Connection) -> None:
    """A released connection carries nothing over (the tenant is per transaction, and
    asyncpg rolls back an open one first), so skip the pool's default reset query: a round
    trip per request that the app's pool does not pay either."""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    size = int(os.environ.get("MAXLOYALTY_DB_POOL_SIZE", "10"))
    app.state.tenant = str(uuid.UUID(os.environ["FLOOR_TENANT_ID"]))
    app.state.pool = await asyncpg.create_pool(
        os.environ["FLOOR_DATABASE_URL"],
        min_size=1,
        max_size=2 * size,
        # Idle connections close at once (one busy under load is idle for milliseconds):
        # the server's connection slots go back to the runs that follow, or the API's next
        # run meets `too many clients` (53300) on a server others use too.
        max_inactive_connection_lifetime=1,
        reset=_keep,
        server_settings={"role": "maxloyalty_app"},
    )
    try:
        yield
    finally:
        await app.state.pool.close()


app = FastAPI(lifespan=lifespan, openapi_url=None)


@app.post("/identify")
async def identify(body: Identify) -> dict[str, object]:
    async with app.state.pool.acquire() as connection, connection.transaction():
        await connection.execute(_TENANT, app.state.tenant)
        card = await connection.fetchrow(_IDENTIFY, body.code)
    if card is None:
        raise HTTPException(404, "no active card with this code")
    return {"card_id": str(card["id"]), "balance": card["balance"]}


@app.post("/accrue", status_code=201)
async def accrue(body: Accrue) -> dict[str, object]:
    points = body.amount * PERCENT // 10_000  # kopecks -> roubles -> PERCENT %
    if points <= 0:
        raise HTTPException(422, "the check is too small for a point")
    tenant, tx_id = app.state.tenant, uuid.uuid4()
    async with app.state.pool.acquire() as connection, connection.transaction():
        await connection.execute(_TENANT, tenant)
        balance = await connection.fetchval(_CARD, body.card_id, points)
        if balance is None:
            raise HTTPException(404, "no active card with this id")
        await connection.execute(
            _LEDGER_ROW, tx_id, tenant, body.card_id, points, body.amount, PERCENT
        )
        await connection.execute(_LOT, uuid.uuid4(), tenant, body.card_id, tx_id, points)
    return {"transaction_id": str(tx_id), "points": points, "balance": balance}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    # As `maxloyalty serve` runs uvicorn: its own logging off, the root logger at WARNING
    # (MAXLOYALTY_LOG_LEVEL in the bench), graceful stop, proxy headers.
    logging.basicConfig(level=logging.WARNING)
    uvicorn.run(
        "floor_app:app",
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        log_config=None,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
