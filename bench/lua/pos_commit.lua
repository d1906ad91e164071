-- POS_COMMIT: a till closes an order through the generic POS API (no hold, no points
-- spent: an accrual on a check with lines and a payment); every order id and
-- Idempotency-Key is new, so none is a replay.
expected = 201
api_key_variable = "POS_API_KEY"
dofile(os.getenv("BENCH_LUA") .. "/common.lua")

function next_request(i)
   local order = string.format("%s-%d-%d-%d", run_tag, tid, counter, math.random(1, 1000000000))
   headers["Idempotency-Key"] = order
   local price = math.random(5000, 250000)
   local body = string.format(
      '{"card_id": "%s", "amount": %d, "lines": [{"code": "101", "name": "Стейк", '
      .. '"category": "Горячее", "price": %d, "quantity": 1}, {"code": "201", '
      .. '"name": "Морс", "category": "Напитки", "price": 20000, "quantity": 1}], '
      .. '"payments": [{"type": "card", "amount": %d}]}',
      card_ids[i], price + 20000, price, price + 20000)
   return wrk.format("POST", "/api/pos/v1/orders/" .. order .. "/commit", headers, body)
end
