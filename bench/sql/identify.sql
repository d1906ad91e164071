-- IDENTIFY (POST /api/cards/identify) as raw SQL: the statements the app sends per request,
-- in the same transactions, captured from the server log (log_statement=all). Variables
-- come from run.sh (-D): tenant, key_id, key_hash, system, active, ncards.
\set n random(1, :ncards)

-- The API key is verified once a second and remembered (process memory), so a
-- request takes no session of its own for it.
-- The request's tenant session: programme, card by code, levels, profile, points held
-- by open orders (read only).
BEGIN;
ROLLBACK;
BEGIN;
-- bench_cards lookup rides on the app's first round trip, so the raw side adds none.
SELECT set_config('app.tenant_id', :tenant, true) AS t, set_config('app.user_id', :key_id, true) AS u, (SELECT code FROM bench_cards WHERE n = :n) AS code \gset
SELECT loyalty_systems.restaurant_id, loyalty_systems.type, loyalty_systems.mode, loyalty_systems.expiry_days, loyalty_systems.pending_days, loyalty_systems.max_redeem_percent, loyalty_systems.discount_cap_percent, loyalty_systems.level_metric, loyalty_systems.rolling_days, loyalty_systems.manual_approval_threshold, loyalty_systems.expiry_reminder_days, loyalty_systems.allow_guest_transfers, loyalty_systems.design, loyalty_systems.id, loyalty_systems.tenant_id, loyalty_systems.created_at, loyalty_systems.updated_at FROM loyalty_systems WHERE loyalty_systems.restaurant_id = :restaurant OR loyalty_systems.restaurant_id IS NULL ORDER BY loyalty_systems.restaurant_id IS NULL LIMIT 1;
SELECT guest_cards.user_id, guest_cards.loyalty_system_id, guest_cards.restaurant_id, guest_cards.code, guest_cards.status, guest_cards.registration_source, guest_cards.level_id, guest_cards.balance, guest_cards.pending_balance, guest_cards.lifetime_spent, guest_cards.total_visits, guest_cards.last_visit_at, guest_cards.last_activity_at, guest_cards.id, guest_cards.tenant_id, guest_cards.created_at, guest_cards.updated_at FROM guest_cards WHERE guest_cards.code = :code AND guest_cards.status = :active AND guest_cards.loyalty_system_id = :system \gset c_
SELECT loyalty_levels.loyalty_system_id, loyalty_levels.name, loyalty_levels.position, loyalty_levels.min_spent, loyalty_levels.percentage, loyalty_levels.birthday_bonus, loyalty_levels.purchase_bonus, loyalty_levels.free_item_code, loyalty_levels.color, loyalty_levels.icon_url, loyalty_levels.is_active, loyalty_levels.id, loyalty_levels.tenant_id, loyalty_levels.created_at, loyalty_levels.updated_at FROM loyalty_levels WHERE loyalty_levels.loyalty_system_id = :system AND loyalty_levels.is_active IS true ORDER BY loyalty_levels.position;
SELECT guest_profiles.user_id, guest_profiles.first_name, guest_profiles.last_name, guest_profiles.middle_name, guest_profiles.gender, guest_profiles.birth_date, guest_profiles.city, guest_profiles.avatar_url, guest_profiles.telegram_username, guest_profiles.preferred_channel, guest_profiles.id, guest_profiles.tenant_id, guest_profiles.created_at, guest_profiles.updated_at FROM guest_profiles WHERE guest_profiles.user_id = :c_user_id;
SELECT coalesce(sum(point_holds.points), 0) AS coalesce_1 FROM point_holds WHERE point_holds.card_id = :c_id AND point_holds.status = 'ACTIVE' AND point_holds.expires_at > now();
ROLLBACK;
