-- FLOOR_ACCRUE: the floor app's one-transaction accrual on a random guest's card, a check
-- of the same range as sale.lua's.
expected = 201
dofile(os.getenv("BENCH_LUA") .. "/common.lua")

function next_request(i)
   local body = string.format(
      '{"card_id": "%s", "amount": %d}', card_ids[i], math.random(10000, 500000))
   return wrk.format("POST", "/accrue", headers, body)
end
