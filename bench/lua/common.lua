-- Shared by the wrk scenarios: each defines `expected` (the status that counts as success),
-- `next_request(guest_index)` and optionally `api_key_variable` (the environment variable
-- holding its key; API_KEY by default), then loads this file. Counting unexpected statuses here
-- keeps errors from passing for throughput. Env: BENCH_DATA, RESTAURANT_ID, API_KEY, RUN_TAG.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("tid", #threads)
end

local function read_lines(path)
   local out = {}
   for line in io.lines(path) do
      if line ~= "" then out[#out + 1] = line end
   end
   return out
end

function init(args)
   local data = os.getenv("BENCH_DATA")
   guest_ids = read_lines(data .. "/guest_ids.txt")
   codes = read_lines(data .. "/codes.txt")
   card_ids = read_lines(data .. "/card_ids.txt")
   restaurant = os.getenv("RESTAURANT_ID")
   run_tag = (os.getenv("RUN_TAG") or "run") .. "-" .. os.time()
   headers = {
      ["Authorization"] = "Bearer " .. os.getenv(api_key_variable or "API_KEY"),
      ["Content-Type"] = "application/json",
   }
   math.randomseed(os.time() * 1000 + tid)
   counter, unexpected, statuses, first_bad = 0, 0, {}, ""
end

function request()
   counter = counter + 1
   return next_request(math.random(#guest_ids))
end

function response(status, resp_headers, body)
   if status ~= expected then
      unexpected = unexpected + 1
      statuses[status] = (statuses[status] or 0) + 1
      if first_bad == "" then first_bad = status .. " " .. string.sub(body or "", 1, 300) end
   end
end

function done(summary, latency, requests)
   local total, by_status, sample = 0, {}, ""
   for _, thread in ipairs(threads) do
      total = total + thread:get("unexpected")
      for status, n in pairs(thread:get("statuses")) do
         by_status[status] = (by_status[status] or 0) + n
      end
      if sample == "" then sample = thread:get("first_bad") end
   end
   local parts = {}
   for status, n in pairs(by_status) do parts[#parts + 1] = status .. "x" .. n end
   io.write(string.format("BENCH unexpected=%d statuses=%s\n", total, table.concat(parts, ",")))
   if sample ~= "" then io.write("BENCH first_unexpected=" .. sample .. "\n") end
end
