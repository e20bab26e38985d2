-- wrk script for every bench run (see bench/load.py).
-- POSTs WRK_BODY as JSON when that variable is set, GETs otherwise; other headers
-- (Authorization) come from wrk's -H. At the end it prints one JSON line, because wrk's
-- own summary has no p95 and counts only statuses >= 400 as errors: here any status
-- outside 200-299 counts (a 307 from a wrong URL would otherwise look like success).

local body = os.getenv("WRK_BODY")
if body ~= nil and body ~= "" then
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non2xx")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, '
    .. '"timeouts": %d, "mean_us": %.1f, "p50_us": %d, "p90_us": %d, "p95_us": %d, '
    .. '"p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, bad, e.connect + e.read + e.write, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency.max))
end
