-- The floor's accrual (bench/floor_app.py, POST /accrue) as raw SQL: the same statements in
-- the same transaction, 5 % of a check in points on a random card: the card's balance
-- raised (its lock), one ledger row (its own operation) and the lot it credits, so
-- `ledger verify` holds. Variables come from run.sh (-D): tenant, ncards.
\set n random(1, :ncards)
\set amount random(10000, 500000)
\set points (:amount * 5) / 10000

BEGIN;
-- bench_cards lookup and the ids ride on the tenant's round trip, so the raw side adds none.
SELECT set_config('app.tenant_id', :tenant, true) AS t, (SELECT card_id FROM bench_cards WHERE n = :n) AS card, gen_random_uuid() AS tx_id, gen_random_uuid() AS lot_id \gset
UPDATE guest_cards SET balance = balance + :points WHERE id = :card AND status = 'ACTIVE' RETURNING balance;
INSERT INTO point_transactions (id, created_at, tenant_id, card_id, operation_id, type, status, amount, source, channel, check_amount, paid_amount, percentage) VALUES (:tx_id, now(), :tenant, :card, :tx_id, 'ACCRUAL', 'COMPLETED', :points, 'POS', 'POS_API', :amount, :amount, 5);
INSERT INTO point_lots (id, tenant_id, card_id, transaction_id, amount, remaining, created_at, activates_at, activated, expires_at) VALUES (:lot_id, :tenant, :card, :tx_id, :points, :points, now(), now(), true, now() + interval '180 days');
COMMIT;
