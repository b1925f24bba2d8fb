-- POSTs one JSON body, read from the file named after `--`, and prints one machine-readable line.
--   wrk -s wrk_report.lua URL -- BODY.json
-- The last line of stdout is `BENCH_JSON {...}` with latencies in microseconds. wrk keeps one
-- latency distribution for all answers; the overload cell, which needs the 2xx answers' apart,
-- uses h2load instead (benchmarks/h2load.py).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "rb"))
  wrk.method = "POST"
  wrk.body = file:read("*a")
  wrk.headers["Content-Type"] = "application/json"
  file:close()
  non_2xx = 0
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non_2xx = non_2xx + 1
  end
end

function done(summary, latency, requests)
  local non_2xx_total = 0
  for _, thread in ipairs(threads) do
    non_2xx_total = non_2xx_total + thread:get("non_2xx")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, '
      .. '"non_2xx": %d, "errors_connect": %d, "errors_read": %d, "errors_write": %d, '
      .. '"errors_timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, non_2xx_total, e.connect, e.read, e.write, e.timeout))
end
