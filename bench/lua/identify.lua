-- IDENTIFY: find a random guest's card by its 6-digit code.
expected = 200
dofile(os.getenv("BENCH_LUA") .. "/common.lua")

function next_request(i)
   local body = string.format('{"restaurant_id": "%s", "code": "%s"}', restaurant, codes[i])
   return wrk.format("POST", "/api/cards/identify", headers, body)
end
