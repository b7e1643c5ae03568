-- wrk script of the session-engine benchmark: GET /whoami through the load
-- balancer, rotating the session cookies of the logged-in users (one per
-- line in the file named by the first script argument), Host: localhost.
-- Counts answers that are not "200 + authenticated" (a logout is an error
-- here, not a fast answer) and prints them as "BENCH_BAD <n> of <m>".
local threads = {}
local cookies = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then table.insert(cookies, line) end
  end
  bad = 0
  seen = 0
  n = id  -- threads start at different users
end

function request()
  n = n + 1
  local sid = cookies[(n % #cookies) + 1]
  return wrk.format("GET", "/whoami", {["Host"] = "localhost", ["Cookie"] = "sessionid=" .. sid})
end

function response(status, headers, body)
  seen = seen + 1
  if status ~= 200 or not string.find(body, '"authenticated": true', 1, true) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local b, s = 0, 0
  for _, t in ipairs(threads) do
    b = b + t:get("bad")
    s = s + t:get("seen")
  end
  io.write(string.format("BENCH_BAD %d of %d\n", b, s))
end
