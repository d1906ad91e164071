-- FLOOR_IDENTIFY: the floor app's lookup of a random guest's card by its 6-digit code
-- (the same cards and rotation as identify.lua).
expected = 200
dofile(os.getenv("BENCH_LUA") .. "/common.lua")

function next_request(i)
   return wrk.format("POST", "/identify", headers, string.format('{"code": "%s"}', codes[i]))
end
