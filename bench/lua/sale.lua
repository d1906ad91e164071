-- SALE: a closed check on a random guest's card; every request has its own
-- Idempotency-Key (thread, counter, random), so none is a replay.
expected = 201
dofile(os.getenv("BENCH_LUA") .. "/common.lua")

function next_request(i)
   headers["Idempotency-Key"] = string.format(
      "%s-%d-%d-%d", run_tag, tid, counter, math.random(1, 1000000000))
   local body = string.format(
      '{"type": "SALE", "restaurant_id": "%s", "amount": %d}',
      restaurant, math.random(10000, 500000))
   return wrk.format("POST", "/api/guest/" .. guest_ids[i] .. "/transaction", headers, body)
end
