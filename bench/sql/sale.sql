-- SALE (POST /api/guest/{id}/transaction) as raw SQL: the statements the app sends per
-- request, in the same transactions, captured from the server log (log_statement=all).
-- Differences, on purpose: ids come from gen_random_uuid() and times from now() instead
-- of the client; the level is taken as BRONZE (5 %) and no tier change is booked; the
-- answer JSON (-D answer) is a fixed document of the app's size. Variables come from run.sh.
\set n random(1, :ncards)
\set amount random(10000, 500000)
\set points (:amount * 5) / 10000

-- Authentication: the API key's own session (pool pre-ping, then the lookup).
BEGIN;
ROLLBACK;
BEGIN;
-- bench_cards lookup rides on the app's first round trip, so the raw side adds none.
SELECT set_config('app.tenant_id', :tenant, true) AS t, set_config('app.user_id', '', true) AS u, (SELECT guest_id FROM bench_cards WHERE n = :n) AS guest \gset
SELECT api_keys.name, api_keys.key_hash, api_keys.prefix, api_keys.restaurant_ids, api_keys.signing_secret, api_keys.created_by_user_id, api_keys.last_used_at, api_keys.revoked_at, api_keys.suspended_at, api_keys.id, api_keys.tenant_id, api_keys.created_at, api_keys.updated_at FROM api_keys WHERE api_keys.key_hash = :key_hash;
ROLLBACK;

-- The request's tenant session: context, idempotency claim, card lock, ledger rows,
-- card update, stored answer, audit entry, outbox event and its delivery job.
BEGIN;
ROLLBACK;
BEGIN;
SELECT set_config('app.tenant_id', :tenant, true), set_config('app.user_id', :key_id, true);
SELECT restaurants.name, restaurants.timezone, restaurants.address, restaurants.city, restaurants.phone, restaurants.status, restaurants.id, restaurants.tenant_id, restaurants.created_at, restaurants.updated_at FROM restaurants WHERE restaurants.id = :restaurant;
SELECT tenants.name, tenants.slug, tenants.organization_type, tenants.subscription_status, tenants.timezone, tenants.max_restaurants, tenants.max_guests, tenants.features, tenants.settings, tenants.logo_url, tenants.primary_color, tenants.secondary_color, tenants.id, tenants.created_at, tenants.updated_at FROM tenants WHERE tenants.id = :tenant;
SELECT loyalty_systems.restaurant_id, loyalty_systems.type, loyalty_systems.mode, loyalty_systems.expiry_days, loyalty_systems.pending_days, loyalty_systems.max_redeem_percent, loyalty_systems.discount_cap_percent, loyalty_systems.level_metric, loyalty_systems.rolling_days, loyalty_systems.manual_approval_threshold, loyalty_systems.expiry_reminder_days, loyalty_systems.allow_guest_transfers, loyalty_systems.design, loyalty_systems.id, loyalty_systems.tenant_id, loyalty_systems.created_at, loyalty_systems.updated_at FROM loyalty_systems WHERE loyalty_systems.restaurant_id = :restaurant OR loyalty_systems.restaurant_id IS NULL ORDER BY loyalty_systems.restaurant_id IS NULL LIMIT 1;
INSERT INTO ledger_operations (kind, idempotency_key, business_key, request_hash, response, status_code, created_at, created_by, id, tenant_id) VALUES ('SALE', gen_random_uuid()::text, NULL, :request_hash, '{}', 201, now(), :key_id, gen_random_uuid(), :tenant) ON CONFLICT DO NOTHING RETURNING ledger_operations.id AS op_id \gset
SELECT ledger_operations.kind, ledger_operations.card_id, ledger_operations.idempotency_key, ledger_operations.business_key, ledger_operations.request_hash, ledger_operations.response, ledger_operations.status_code, ledger_operations.created_at, ledger_operations.created_by, ledger_operations.id, ledger_operations.tenant_id FROM ledger_operations WHERE ledger_operations.id = :op_id;
SELECT guest_cards.user_id, guest_cards.loyalty_system_id, guest_cards.restaurant_id, guest_cards.code, guest_cards.status, guest_cards.registration_source, guest_cards.level_id, guest_cards.balance, guest_cards.pending_balance, guest_cards.lifetime_spent, guest_cards.total_visits, guest_cards.last_visit_at, guest_cards.last_activity_at, guest_cards.id, guest_cards.tenant_id, guest_cards.created_at, guest_cards.updated_at FROM guest_cards WHERE guest_cards.user_id = :guest AND guest_cards.loyalty_system_id = :system AND guest_cards.status != :deleted AND guest_cards.restaurant_id IS NULL \gset c_
SELECT guest_cards.user_id, guest_cards.loyalty_system_id, guest_cards.restaurant_id, guest_cards.code, guest_cards.status, guest_cards.registration_source, guest_cards.level_id, guest_cards.balance, guest_cards.pending_balance, guest_cards.lifetime_spent, guest_cards.total_visits, guest_cards.last_visit_at, guest_cards.last_activity_at, guest_cards.id, guest_cards.tenant_id, guest_cards.created_at, guest_cards.updated_at FROM guest_cards WHERE guest_cards.id = :c_id FOR UPDATE;
SELECT loyalty_levels.loyalty_system_id, loyalty_levels.name, loyalty_levels.position, loyalty_levels.min_spent, loyalty_levels.percentage, loyalty_levels.birthday_bonus, loyalty_levels.purchase_bonus, loyalty_levels.free_item_code, loyalty_levels.color, loyalty_levels.icon_url, loyalty_levels.is_active, loyalty_levels.id, loyalty_levels.tenant_id, loyalty_levels.created_at, loyalty_levels.updated_at FROM loyalty_levels WHERE loyalty_levels.loyalty_system_id = :system AND loyalty_levels.is_active IS true ORDER BY loyalty_levels.position;
INSERT INTO point_transactions (id, created_at, card_id, operation_id, type, status, amount, source, source_id, restaurant_id, check_number, check_amount, paid_amount, discount_amount, level_id, percentage, reason, reverses_id, reward_item_id, campaign_id, created_by_user_id, approved_by_user_id, status_changed_at, tenant_id) VALUES (gen_random_uuid(), now(), :c_id, :op_id, 'ACCRUAL', 'COMPLETED', :points, 'POS', :key_id, :restaurant, NULL, :amount, :amount, NULL, :c_level_id, 5.00, NULL, NULL, NULL, NULL, NULL, NULL, NULL, :tenant) RETURNING id AS tx_id \gset
UPDATE guest_cards SET balance = balance + :points, updated_at = now() WHERE guest_cards.id = :c_id;
INSERT INTO point_lots (card_id, transaction_id, amount, remaining, created_at, activates_at, activated, expires_at, id, tenant_id) VALUES (:c_id, :tx_id, :points, :points, now(), now(), true, now() + interval '180 days', gen_random_uuid(), :tenant);
UPDATE guest_cards SET lifetime_spent = lifetime_spent + :amount, total_visits = total_visits + 1, last_visit_at = now(), last_activity_at = now(), updated_at = now() WHERE guest_cards.id = :c_id;
UPDATE ledger_operations SET card_id = :c_id, response = :answer WHERE ledger_operations.id = :op_id;
INSERT INTO activity_log (id, created_at, tenant_id, actor_type, actor_id, actor_role, action, entity_type, entity_id, before, after, ip, user_agent, request_id) VALUES (gen_random_uuid(), now(), :tenant, 'api_key', :key_id, 'SYSTEM', 'ledger.sale', 'guest_card', :c_id, 'null', :answer, '127.0.0.1', 'pgbench', md5(random()::text));
INSERT INTO integration_events (event_type, payload, status, attempts, last_error, created_at, delivered_at, id, tenant_id) VALUES ('transaction.created', :answer, 'PENDING', 0, NULL, now(), NULL, gen_random_uuid(), :tenant) RETURNING id AS event_id \gset
WITH input AS MATERIALIZED ( SELECT nextval( (SELECT pg_get_serial_sequence('pgqueuer', 'id')) ) AS id, priority, entrypoint, payload, execute_after, dedupe_key, headers, ord FROM UNNEST( ARRAY[0]::int[], ARRAY['outbox.deliver']::text[], ARRAY[convert_to(json_build_object('tenant_id', :tenant::text, 'event_id', :event_id::text)::text, 'UTF8')]::bytea[], ARRAY['0']::interval[], ARRAY[NULL]::text[], ARRAY['null']::jsonb[] ) WITH ORDINALITY AS t(priority, entrypoint, payload, execute_after, dedupe_key, headers, ord) ), inserted AS ( INSERT INTO pgqueuer AS job (id, priority, entrypoint, payload, execute_after, dedupe_key, headers, status) SELECT id, priority, entrypoint, payload, execute_after + NOW(), dedupe_key, headers, 'queued' FROM input ON CONFLICT (dedupe_key) WHERE ((status = ANY (ARRAY['queued'::pgqueuer_status, 'picked'::pgqueuer_status])) AND (dedupe_key IS NOT NULL)) DO NOTHING RETURNING id, entrypoint, priority, dedupe_key ), logged AS ( INSERT INTO pgqueuer_log (job_id, status, entrypoint, priority) SELECT id, 'queued', entrypoint, priority FROM inserted WHERE id IN (SELECT id FROM input) ) SELECT i.ord AS ord, ins.id AS id FROM inserted ins JOIN input i ON i.id = ins.id ORDER BY i.ord;
COMMIT;
