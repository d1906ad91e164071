"""The scale scenario's steps (bench/scale.sh runs them in order; not a test).

  scale.py setup BASE_URL OUT_DIR SLUG...   owner, then per network through the API: tenant,
                                            admin, restaurant, POINTS programme, a till's
                                            API key; writes OUT_DIR/<slug>.json
  scale.py measure BASE_URL OUT_DIR SLUG    identify, sale, balance and history's first page
                                            through the API, CALLS each (env, 300) on random
                                            cards, one at a time; OUT_DIR/<slug>.measure.json
  scale.py explain OUT_DIR SLUG             EXPLAIN (ANALYZE, BUFFERS) of the hot queries as
                                            the app's role (row-level security applies)
  scale.py expire OUT_DIR SLUG              the daily job's expiry for the network, timed
  scale.py verify OUT_DIR SLUG...           the ledger's invariants for the cards measured
  scale.py report OUT_DIR                   the table

DATABASE_URL (the bench's own database, as its owner) and MAXLOYALTY_DATA_DIR in the env.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import secrets
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).parent))
from load_data import create_user, expect, login

CALLS = int(os.environ.get("CALLS", "300"))
WARMUP = 20  # calls of each kind before the measured ones
OWNER = "owner@scale.example.com"
CALL_NAMES = ["identify", "sale", "balance", "history"]


def _dsn() -> str:
    return os.environ["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")


def setup(base_url: str, out: Path, slugs: list[str]) -> None:
    password = secrets.token_urlsafe(16)
    with httpx.Client(base_url=base_url, timeout=60) as client:
        create_user(OWNER, password, "OWNER")
        owner = login(client, OWNER, password)
        for slug in slugs:
            tenant = expect(
                client.post(
                    "/api/platform/tenants",
                    json={"name": slug, "slug": slug, "timezone": "Europe/Moscow"},
                    headers=owner,
                ),
                201,
                f"create tenant {slug}",
            )
            email = f"admin@{slug}.example.com"
            create_user(email, password, "RESTAURANT_ADMIN", tenant=slug)
            admin = login(client, email, password)
            restaurant = expect(
                client.post(
                    "/api/restaurants",
                    json={"name": "R1", "timezone": "Europe/Moscow"},
                    headers=admin,
                ),
                201,
                "create restaurant",
            )
            program = expect(
                client.post(
                    "/api/loyalty/programs",
                    json={"type": "POINTS", "mode": "UNIFIED"},
                    headers=admin,
                ),
                201,
                "create programme",
            )
            key = expect(
                client.post("/api/api-keys", json={"name": "till"}, headers=admin),
                201,
                "create API key",
            )
            ids = {
                "tenant": tenant["id"],
                "restaurant": restaurant["id"],
                "system": program["id"],
                "till": key["id"],
                "api_key": key["key"],
            }
            (out / f"{slug}.json").write_text(json.dumps(ids))
            # The psql variables of scale_load.sql.
            (out / f"{slug}.vars").write_text(
                " ".join(f"-v {k}={v}" for k, v in ids.items() if k != "api_key")
            )


async def _cards(slug: str, count: int) -> list[dict[str, Any]]:
    """`count` random cards of the network (repeats when it has fewer)."""
    conn = await asyncpg.connect(_dsn())
    try:
        rows = await conn.fetch(
            "SELECT c.id, c.user_id, c.code FROM guest_cards c JOIN tenants t"
            " ON t.id = c.tenant_id WHERE t.slug = $1 ORDER BY random() LIMIT $2",
            slug,
            count,
        )
    finally:
        await conn.close()
    cards = [dict(r) for r in rows]
    return [cards[i % len(cards)] for i in range(count)]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


class _Waits:
    """What the app's backends are doing, sampled every 20 ms while one kind of call runs:
    a slow call shows whether it waits on the disk (IO, WAL), a lock, or works (CPU)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._sample()), daemon=True)

    async def _sample(self) -> None:
        conn = await asyncpg.connect(_dsn())
        try:
            while not self._stop.is_set():
                for row in await conn.fetch(
                    "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') AS what"
                    " FROM pg_stat_activity WHERE datname = current_database()"
                    " AND usename = 'maxloyalty_app' AND state = 'active'"
                ):
                    self.counts[row["what"]] += 1
                await asyncio.sleep(0.02)
        finally:
            await conn.close()

    def __enter__(self) -> _Waits:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def top(self) -> dict[str, int]:
        return dict(self.counts.most_common(4))


def measure(base_url: str, out: Path, slug: str) -> None:
    ids = json.loads((out / f"{slug}.json").read_text())
    cards = asyncio.run(_cards(slug, WARMUP + CALLS))
    random.shuffle(cards)
    headers = {"Authorization": f"Bearer {ids['api_key']}"}
    restaurant = ids["restaurant"]

    def call(client: httpx.Client, name: str, card: dict[str, Any]) -> httpx.Response:
        guest = card["user_id"]
        if name == "identify":
            body = {"restaurant_id": restaurant, "code": card["code"], "check_amount": 150_000}
            return client.post("/api/cards/identify", json=body)
        if name == "sale":
            body = {"type": "SALE", "restaurant_id": restaurant, "amount": 150_000}
            key = {"Idempotency-Key": uuid.uuid4().hex}
            return client.post(f"/api/guest/{guest}/transaction", json=body, headers=key)
        if name == "balance":
            return client.get(f"/api/guest/{guest}/balance")
        return client.get(f"/api/guest/{guest}/history", params={"limit": 20})

    expected = {"identify": 200, "sale": 201, "balance": 200, "history": 200}
    results: dict[str, Any] = {}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        for name in CALL_NAMES:
            timings = []
            with _Waits() as waits:
                for n, card in enumerate(cards):
                    started = time.perf_counter()
                    answer = call(client, name, card)
                    elapsed = (time.perf_counter() - started) * 1000
                    if answer.status_code != expected[name]:
                        sys.exit(f"scale: {name} -> {answer.status_code} {answer.text[:300]}")
                    if name == "history" and not answer.json()["items"]:
                        sys.exit("scale: a card without history")
                    if n >= WARMUP:
                        timings.append(elapsed)
            results[name] = {
                "calls": len(timings),
                "p50": statistics.median(timings),
                "p99": _percentile(timings, 0.99),
                "waits": waits.top(),
            }
    results["cards"] = sorted({str(c["id"]) for c in cards})
    (out / f"{slug}.measure.json").write_text(json.dumps(results))
    for name in CALL_NAMES:
        r = results[name]
        print(
            f"{slug} {name}: p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms; backends: {r['waits']}"
        )


async def _as_app(conn: asyncpg.Connection, tenant: str) -> None:
    """Act as the app's role in the network, as a request's transaction does."""
    await conn.execute("SET ROLE maxloyalty_app")
    await conn.execute("SELECT set_config('app.tenant_id', $1, false)", tenant)


# The hot queries as the app sends them (SQLAlchemy renders `.is_(False)` as `IS false`, which
# a partial index `WHERE NOT activated` would not serve), with the values in place.
EXPLAINS = {
    "card by code": (
        "SELECT * FROM guest_cards WHERE code = {code} AND status = 'ACTIVE'"
        " AND loyalty_system_id = {system}"
    ),
    "history first page": (
        "SELECT * FROM point_transactions WHERE card_id = {card} ORDER BY id DESC LIMIT 21"
    ),
    "open lots of a card": (
        "SELECT * FROM point_lots WHERE card_id = {card} AND remaining > 0 AND activated IS true"
        " ORDER BY expires_at, created_at"
    ),
    "settle: due lots of a card": (
        "SELECT * FROM point_lots WHERE card_id = {card}"
        " AND ((activated IS false AND activates_at <= {now})"
        " OR (remaining > 0 AND expires_at <= {now})) ORDER BY activates_at FOR UPDATE"
    ),
    "expiry selection (daily job)": (
        "SELECT card_id FROM (SELECT card_id FROM point_lots WHERE activated IS false"
        " AND activates_at <= {now} AND card_id > {after} UNION SELECT card_id FROM point_lots"
        " WHERE remaining > 0 AND expires_at <= {now} AND card_id > {after}) due"
        " ORDER BY card_id LIMIT 50000"
    ),
}
# Plan lines worth printing: the nodes that read (with their index), limits and sorts, and
# the time; a partition's lines stand for all of them, with how many there were.
KEY_NODE = re.compile(r"(Scan|Append|Limit|Sort|Unique|LockRows|BitmapOr)( |$)")


def key_lines(plan: list[str]) -> list[str]:
    lines: dict[str, int] = {}
    for line in plan:
        if KEY_NODE.search(line) or "Execution Time" in line:
            node = re.sub(r"\(cost=[^)]*\) ", "", line.strip().removeprefix("->  "))
            node = re.sub(r"_\d{4}_\d{2}", "_<month>", node)
            node = re.sub(r" point_transactions_\d+ ", " ", node)
            if "_<month>" in node:
                node = re.sub(r" \(actual time=[^)]*\)", "", node)
            lines[node] = lines.get(node, 0) + 1
    return [f"{n}  (×{c} partitions)" if c > 1 else n for n, c in lines.items()]


def explain(out: Path, slug: str) -> None:
    ids = json.loads((out / f"{slug}.json").read_text())

    async def main() -> dict[str, list[str]]:
        conn = await asyncpg.connect(_dsn())
        try:
            # A lapsed card: its lots are the due ones.
            card = await conn.fetchrow(
                "SELECT c.id, c.code FROM guest_cards c JOIN point_lots l ON l.card_id = c.id"
                " WHERE c.tenant_id = $1 AND l.remaining > 0 AND l.expires_at <= now()"
                " LIMIT 1",
                uuid.UUID(ids["tenant"]),
            )
            await _as_app(conn, ids["tenant"])
            values = {
                "code": card["code"],
                "system": ids["system"],
                "card": card["id"],
                "now": datetime.now(UTC).isoformat(),
                "after": uuid.UUID(int=0),
            }
            literals = {k: f"'{v}'" for k, v in values.items()}  # ids and a code: no quotes
            plans = {}
            async with conn.transaction():
                for name, sql in EXPLAINS.items():
                    rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql.format(**literals)}")
                    plans[name] = [r[0] for r in rows]
                raise _Rollback  # FOR UPDATE took locks; nothing else changed
        except _Rollback:
            return plans
        finally:
            await conn.close()

    plans = asyncio.run(main())
    lines = []
    for name, plan in plans.items():
        lines.append(f"{name}:")
        lines += [f"    {line}" for line in key_lines(plan)]
    text = "\n".join(lines)
    (out / f"{slug}.explain.txt").write_text(text + "\n")
    (out / f"{slug}.explain.full.txt").write_text(
        "\n\n".join(f"{n}:\n" + "\n".join(p) for n, p in plans.items())
    )
    print(text)


class _Rollback(Exception):
    pass


def expire(out: Path, slug: str) -> None:
    from maxloyalty.config import get_settings
    from maxloyalty.ledger.service.daily import activate_and_expire
    from maxloyalty.runtime import Runtime

    ids = json.loads((out / f"{slug}.json").read_text())

    async def main() -> dict[str, Any]:
        conn = await asyncpg.connect(_dsn())
        try:
            due = await conn.fetchval(
                "SELECT count(*) FROM point_lots WHERE tenant_id = $1 AND remaining > 0"
                " AND expires_at <= now()",
                uuid.UUID(ids["tenant"]),
            )
        finally:
            await conn.close()
        runtime = Runtime.start(get_settings())
        try:
            started = time.perf_counter()
            activated, expired = await activate_and_expire(
                runtime.db, uuid.UUID(ids["tenant"]), datetime.now(UTC)
            )
            seconds = time.perf_counter() - started
        finally:
            await runtime.close()
        return {"due": due, "expired": expired, "activated": activated, "seconds": seconds}

    result = asyncio.run(main())
    (out / f"{slug}.expire.json").write_text(json.dumps(result))
    print(
        f"{slug}: {result['expired']} of {result['due']} due lots expired in "
        f"{result['seconds']:.1f} s"
    )
    if result["expired"] != result["due"]:
        sys.exit("scale: the expiry left due lots")


# verify.py's checks, for the cards named.
VERIFY_CARDS = """
    SELECT c.id FROM guest_cards c
    WHERE c.id = ANY($1::uuid[]) AND (
        c.balance <> (SELECT coalesce(sum(amount), 0) FROM point_transactions
                      WHERE card_id = c.id AND status IN ('COMPLETED', 'REVERSED'))
        OR c.balance <> (SELECT coalesce(sum(remaining), 0) FROM point_lots
                         WHERE card_id = c.id AND activated)
        OR c.pending_balance <> (SELECT coalesce(sum(remaining), 0) FROM point_lots
                                 WHERE card_id = c.id AND NOT activated))
    UNION
    SELECT l.card_id FROM point_lots l
    WHERE l.card_id = ANY($1::uuid[])
      AND l.remaining <> l.amount - (SELECT coalesce(sum(amount), 0) FROM lot_allocations
                                     WHERE lot_id = l.id)
"""


def verify(out: Path, slugs: list[str]) -> None:
    async def main() -> None:
        conn = await asyncpg.connect(_dsn())
        try:
            for slug in slugs:
                cards = json.loads((out / f"{slug}.measure.json").read_text())["cards"]
                async with conn.transaction(isolation="repeatable_read"):
                    bad = await conn.fetch(VERIFY_CARDS, [uuid.UUID(c) for c in cards])
                    rows = await conn.fetchval(
                        "SELECT count(*) FROM point_transactions WHERE card_id = ANY($1::uuid[])",
                        [uuid.UUID(c) for c in cards],
                    )
                print(
                    f"{slug}: {len(cards)} cards measured ({rows} ledger rows), "
                    f"{len(bad)} mismatches"
                )
                (out / f"{slug}.verify.json").write_text(
                    json.dumps({"cards": len(cards), "mismatches": len(bad)})
                )
                if bad:
                    sys.exit(f"scale: ledger mismatch on {[str(r[0]) for r in bad][:5]}")
        finally:
            await conn.close()

    asyncio.run(main())


def report(out: Path, small: str, big: str) -> None:
    a = json.loads((out / f"{small}.measure.json").read_text())
    b = json.loads((out / f"{big}.measure.json").read_text())
    sizes = json.loads((out / "sizes.json").read_text())
    lines = [
        f"| call | {sizes[small]:,} rows p50 | p99 | {sizes[big]:,} rows p50 | p99 | p50 ratio |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    worst = 0.0
    for name in CALL_NAMES:
        ratio = b[name]["p50"] / a[name]["p50"]
        worst = max(worst, ratio)
        lines.append(
            f"| {name} | {a[name]['p50']:.1f} ms | {a[name]['p99']:.1f} ms "
            f"| {b[name]['p50']:.1f} ms | {b[name]['p99']:.1f} ms | {ratio:.2f} |"
        )
    lines.append("")
    lines += [
        f"backends during {name} ({net}): {m[name]['waits']}"
        for net, m in ((small, a), (big, b))
        for name in CALL_NAMES
    ]
    expired = json.loads((out / f"{big}.expire.json").read_text())
    lines += [
        "",
        f"daily expiry: {expired['expired']:,} due lots in {expired['seconds']:.1f} s "
        f"({'within' if expired['seconds'] < 60 else 'OVER'} the 60 s target); "
        f"worst p50 ratio {worst:.2f} ({'within' if worst <= 1.5 else 'OVER'} 1.5)",
        "",
        "EXPLAIN (ANALYZE, BUFFERS) on the big network, key lines:",
        (out / f"{big}.explain.txt").read_text().rstrip(),
    ]
    print("\n".join(lines))


def main() -> None:
    command, *args = sys.argv[1:]
    if command == "setup":
        setup(args[0], Path(args[1]), args[2:])
    elif command == "measure":
        measure(args[0], Path(args[1]), args[2])
    elif command == "explain":
        explain(Path(args[0]), args[1])
    elif command == "expire":
        expire(Path(args[0]), args[1])
    elif command == "verify":
        verify(Path(args[0]), args[1:])
    elif command == "report":
        report(Path(args[0]), args[1], args[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
