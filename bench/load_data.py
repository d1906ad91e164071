"""Load the benchmark's data through the real API: owner, tenant, admin, restaurant,
programme, a till API key, a POS integration (its own key) and GUESTS guests.

Usage: load_data.py BASE_URL OUT_DIR (DATABASE_URL and MAXLOYALTY_DATA_DIR in the env,
for the `maxloyalty user create` calls). Writes into OUT_DIR:
  guest_ids.txt, codes.txt, card_ids.txt   one per line, same order (read by the wrk scripts)
  cards.tsv                 card_id, code, guest_id (copied into bench_cards for pgbench)
  bench.env                 RESTAURANT_ID, TENANT_ID, API_KEY, POS_API_KEY and
                            POS_INTEGRATION_ID (a CUSTOM till's; sourced by run.sh)
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from pathlib import Path

import httpx

CLI = str(Path(sys.executable).with_name("maxloyalty"))
IN_FLIGHT = 32
ATTEMPTS = 3  # per guest: a till may retry a transient failure, the bench too


def fail(what: str, answer: httpx.Response) -> None:
    sys.exit(f"load_data: {what} -> {answer.status_code} {answer.text[:500]}")


def expect(answer: httpx.Response, status: int, what: str) -> dict:
    if answer.status_code != status:
        fail(what, answer)
    return answer.json()


def create_user(email: str, password: str, role: str, tenant: str | None = None) -> None:
    command = [CLI, "user", "create", "--email", email, "--password", password, "--role", role]
    if tenant:
        command += ["--tenant", tenant]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        sys.exit(f"load_data: {' '.join(command[:3])} {email} failed:\n{done.stderr[-2000:]}")


def login(client: httpx.Client, email: str, password: str) -> dict[str, str]:
    tokens = expect(
        client.post("/api/auth/login", json={"login": email, "password": password}),
        200,
        f"login {email}",
    )
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def set_up(base_url: str) -> dict[str, str]:
    """Everything but the guests; returns ids and the till's key."""
    password = secrets.token_urlsafe(16)
    with httpx.Client(base_url=base_url, timeout=30) as client:
        create_user("owner@bench.example.com", password, "OWNER")
        owner = login(client, "owner@bench.example.com", password)
        tenant = expect(
            client.post(
                "/api/platform/tenants",
                json={"name": "Bench", "slug": "bench", "timezone": "Europe/Moscow"},
                headers=owner,
            ),
            201,
            "create tenant",
        )
        create_user("admin@bench.example.com", password, "RESTAURANT_ADMIN", tenant="bench")
        admin = login(client, "admin@bench.example.com", password)
        restaurant = expect(
            client.post(
                "/api/restaurants",
                json={"name": "R1", "timezone": "Europe/Moscow"},
                headers=admin,
            ),
            201,
            "create restaurant",
        )
        expect(
            client.post(
                "/api/loyalty/programs", json={"type": "POINTS", "mode": "UNIFIED"}, headers=admin
            ),
            201,
            "create programme",
        )
        key = expect(
            client.post("/api/api-keys", json={"name": "bench till"}, headers=admin),
            201,
            "create API key",
        )
        pos = expect(
            client.post(
                "/api/pos/integrations",
                json={"restaurant_id": restaurant["id"], "system": "CUSTOM", "name": "bench POS"},
                headers=admin,
            ),
            201,
            "create POS integration",
        )
    return {
        "TENANT_ID": tenant["id"],
        "RESTAURANT_ID": restaurant["id"],
        "API_KEY": key["key"],
        "POS_API_KEY": pos["api_key"],
        "POS_INTEGRATION_ID": pos["id"],
    }


async def create_guests(base_url: str, ids: dict[str, str], count: int) -> list[dict]:
    headers = {"Authorization": f"Bearer {ids['API_KEY']}"}
    gate = asyncio.Semaphore(IN_FLIGHT)
    limits = httpx.Limits(max_connections=IN_FLIGHT)

    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=30, limits=limits
    ) as client:

        async def one(n: int) -> dict:
            body = {"phone": f"+7925{1_000_000 + n:07d}", "restaurant_id": ids["RESTAURANT_ID"]}
            async with gate:
                for _ in range(ATTEMPTS):
                    answer = await client.post("/api/guests", json=body)
                    if answer.status_code == 201:
                        return answer.json()
                    if answer.status_code < 500 and answer.status_code != 409:
                        break  # a 4xx other than a race will not pass on retry
            fail(f"create guest {body['phone']}", answer)
            raise AssertionError  # unreachable: fail() exits

        return await asyncio.gather(*(one(n) for n in range(count)))


def main() -> None:
    base_url, out = sys.argv[1], Path(sys.argv[2])
    count = int(os.environ.get("GUESTS", "2000"))
    ids = set_up(base_url)
    guests = asyncio.run(create_guests(base_url, ids, count))
    (out / "guest_ids.txt").write_text("".join(f"{g['guest_id']}\n" for g in guests))
    (out / "codes.txt").write_text("".join(f"{g['code']}\n" for g in guests))
    (out / "card_ids.txt").write_text("".join(f"{g['card_id']}\n" for g in guests))
    (out / "cards.tsv").write_text(
        "".join(f"{g['card_id']}\t{g['code']}\t{g['guest_id']}\n" for g in guests)
    )
    (out / "bench.env").write_text("".join(f"{k}='{v}'\n" for k, v in ids.items()))
    print(f"load_data: {len(guests)} guests in tenant {ids['TENANT_ID']}")


if __name__ == "__main__":
    main()
