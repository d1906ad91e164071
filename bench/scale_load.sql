-- Two years of one network's ledger, written straight into the tables by the owner
-- (bench/scale.sh runs it; not the app's path, but the rows the app writes).
--
-- psql variables: tenant, system, restaurant (ids the API created), till (the API key id
-- the history was posted with), cards (how many guests).
--
-- Every card has 100 ledger rows, one visit of a till each 6-11 days:
--   even cards ("active", 67 visits up to yesterday): a plain sale, then a sale paying with
--     all the open points (drawn soonest expiry first: the two lots earned since), and so on;
--     their last lots are open and not yet due;
--   odd cards ("lapsed", 54 such visits up to 13 months ago, then 19 plain sales up to
--     200 days ago): 20 lots past their expiry that nobody booked yet, as if the daily job
--     had been stopped for months: 1 million due lots over 100,000 cards.
-- A sale earns floor(paid × level % / 100) points in rubles, the level being the one the
-- card's spend reaches (all its rows at that level, a simplification); a lot expires at the
-- end of the 180th day on the network's clock (Europe/Moscow). Every balance is the sum of
-- its rows and of its lots' remaining points, every lot's remaining its amount less its
-- allocations: `maxloyalty ledger verify` holds.
\set ON_ERROR_STOP on
\timing on
-- Rows made consistent here: the foreign keys' per-row triggers would only slow the load.
SET session_replication_role = replica;
SET synchronous_commit = off;
SET work_mem = '256MB';
SET maintenance_work_mem = '512MB';
SET max_parallel_workers_per_gather = 0;  -- two cores, shared

SELECT maxloyalty_ensure_partitions(3, 26);

DROP TABLE IF EXISTS scale_cards, scale_visits;
CREATE UNLOGGED TABLE scale_cards AS
SELECT n, n % 2 = 1 AS lapsed,
       maxloyalty_uuid7(now() - interval '760 days' + n * interval '1 ms') AS card_id,
       maxloyalty_uuid7(now() - interval '760 days' + n * interval '1 ms') AS user_id,
       -- 7919 is prime to 10^6: distinct 6-digit codes for up to a million cards
       lpad(((n * 7919 + 12345) % 1000000)::text, 6, '0') AS code
FROM generate_series(0, :cards - 1) n;

CREATE UNLOGGED TABLE scale_visits AS
WITH plan AS (
    SELECT c.n, c.card_id, c.lapsed, k,
           CASE WHEN c.lapsed THEN 54 ELSE 67 END AS pattern,
           CASE WHEN c.lapsed THEN 73 ELSE 67 END AS visits
    FROM scale_cards c, generate_series(0, CASE WHEN c.n % 2 = 1 THEN 72 ELSE 66 END) k
), timed AS (
    SELECT p.*,
           k < pattern AND k % 2 = 1 AS redeems,
           date_trunc('day', now())
             - make_interval(days => CASE
                   WHEN NOT lapsed THEN 730 - k * 729 / 66
                   WHEN k < pattern THEN 730 - k * 340 / 53
                   ELSE 380 - (k - pattern) * 10 END)
             + make_interval(hours => 8 + (n + k) % 9, mins => (n * 7 + k * 13) % 60)
             AS at,
           -- money paid (kopecks): 500–5000 ₽, and 3000–5000 ₽ at a visit that spends
           -- points, so its points never pass the programme's 50 % of the check
           CASE WHEN k < pattern AND k % 2 = 1
                THEN 300000 + abs(hashint8(n * 1000 + k)) % 200000
                ELSE 50000 + abs(hashint8(n * 1000 + k)) % 450000 END AS paid
    FROM plan p
), levelled AS (
    SELECT t.*, l.id AS level_id, l.percentage
    FROM timed t
    JOIN (SELECT n, sum(paid) AS spent FROM timed GROUP BY n) s USING (n)
    CROSS JOIN LATERAL (
        SELECT id, percentage FROM loyalty_levels
        WHERE loyalty_system_id = :'system'::uuid AND is_active AND min_spent <= s.spent
        ORDER BY min_spent DESC LIMIT 1
    ) l
), earned AS (
    SELECT v.*, floor(paid * percentage / 10000)::bigint AS accrued,
           maxloyalty_uuid7(at) AS op_id,
           maxloyalty_uuid7(at) AS redemption_id,
           maxloyalty_uuid7(at + interval '1 ms') AS accrual_id,
           maxloyalty_uuid7(at + interval '1 ms') AS lot_id
    FROM levelled v
)
SELECT e.*,
       CASE WHEN redeems THEN lag(accrued) OVER w + coalesce(lag(accrued, 2) OVER w, 0)
            ELSE 0 END AS redeemed,
       lag(lot_id) OVER w AS lot_1, lag(lot_id, 2) OVER w AS lot_2,
       lag(accrued) OVER w AS accrued_1, lag(accrued, 2) OVER w AS accrued_2,
       -- a lot is spent by the next visit that redeems (the next odd one), if there is one
       (k + 1 + k % 2) < pattern AS spent
FROM earned e
WINDOW w AS (PARTITION BY n ORDER BY k);

INSERT INTO users (id, role, is_active, is_blocked, phone_verified, email_verified,
                   created_at, updated_at)
SELECT user_id, 'GUEST', true, false, false, false, now() - interval '740 days',
       now() - interval '740 days'
FROM scale_cards;

INSERT INTO user_roles (id, tenant_id, user_id, role, restaurant_ids, is_active, assigned_at)
SELECT maxloyalty_uuid7(now() - interval '740 days'), :'tenant'::uuid, user_id, 'GUEST', '{}',
       true, now() - interval '740 days'
FROM scale_cards;

INSERT INTO guest_profiles (id, tenant_id, user_id, first_name, last_name, preferred_channel,
                            created_at, updated_at)
SELECT maxloyalty_uuid7(now() - interval '740 days'), :'tenant'::uuid, user_id, 'Гость', n::text,
       'SMS', now() - interval '740 days', now() - interval '740 days'
FROM scale_cards;

INSERT INTO guest_cards (id, tenant_id, user_id, loyalty_system_id, code, status,
                         registration_source, level_id, balance, pending_balance,
                         lifetime_spent, total_visits, last_visit_at, last_activity_at,
                         created_at, updated_at)
SELECT c.card_id, :'tenant'::uuid, c.user_id, :'system'::uuid, c.code, 'ACTIVE', 'POS', s.level_id,
       s.balance, 0, s.spent, s.visits, s.last_at, s.last_at, s.first_at - interval '1 minute',
       s.last_at
FROM scale_cards c
JOIN (
    SELECT n, min(level_id::text)::uuid AS level_id, sum(paid) AS spent, count(*) AS visits,
           sum(accrued) - sum(redeemed) AS balance, min(at) AS first_at, max(at) AS last_at
    FROM scale_visits GROUP BY n
) s USING (n);

-- One operation per visit, as `idempotency.claim` stores it: the till's key, its answer.
INSERT INTO ledger_operations (id, tenant_id, kind, card_id, idempotency_key, request_hash,
                               response, status_code, created_at, created_by)
SELECT op_id, :'tenant'::uuid, CASE WHEN redeems THEN 'REDEMPTION' ELSE 'SALE' END, card_id,
       md5(op_id::text), md5(card_id::text || k) || md5(k || card_id::text),
       jsonb_build_object('operation_id', op_id, 'card_id', card_id, 'status', 'COMPLETED',
                          'accrued', accrued, 'redeemed', redeemed),
       201, at, :'till'::uuid
FROM scale_visits
ORDER BY 5;  -- in the order of the caller's unique key: its index is written front to back

-- The rows of each visit, as `operations._sale` books them through a till's key.
INSERT INTO point_transactions (id, created_at, tenant_id, card_id, operation_id, type,
                                status, amount, source, channel, source_id, restaurant_id,
                                check_amount, paid_amount, level_id, percentage)
SELECT redemption_id, at, :'tenant'::uuid, card_id, op_id, 'REDEMPTION', 'COMPLETED', -redeemed,
       'POS', 'POS_API', :'till'::text, :'restaurant'::uuid, paid + redeemed * 100, NULL, level_id,
       percentage
FROM scale_visits WHERE redeems
UNION ALL
SELECT accrual_id, at, :'tenant'::uuid, card_id, op_id, 'ACCRUAL', 'COMPLETED', accrued, 'POS',
       'POS_API', :'till'::text, :'restaurant'::uuid, paid + redeemed * 100, paid, level_id, percentage
FROM scale_visits
ORDER BY 2;

INSERT INTO point_lots (id, tenant_id, card_id, transaction_id, amount, remaining, created_at,
                        activates_at, activated, expires_at)
SELECT lot_id, :'tenant'::uuid, card_id, accrual_id, accrued,
       CASE WHEN spent THEN 0 ELSE accrued END, at, at, true,
       (date_trunc('day', (at + interval '180 days') AT TIME ZONE 'Europe/Moscow')
          + interval '1 day' - interval '1 microsecond') AT TIME ZONE 'Europe/Moscow'
FROM scale_visits ORDER BY at;

-- A redemption draws the older of the two open lots first (it expires first), then the other.
INSERT INTO lot_allocations (id, tenant_id, lot_id, transaction_id, amount, created_at)
SELECT maxloyalty_uuid7(at), :'tenant'::uuid, lot_2, redemption_id, accrued_2, at
FROM scale_visits WHERE redeems AND lot_2 IS NOT NULL
UNION ALL
SELECT maxloyalty_uuid7(at), :'tenant'::uuid, lot_1, redemption_id, accrued_1, at
FROM scale_visits WHERE redeems
ORDER BY 6;

DROP TABLE scale_cards, scale_visits;
ANALYZE;
