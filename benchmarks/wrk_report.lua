-- POSTs one JSON body, read from the file named after `--`, and prints one machine-readable line.
--   wrk -s wrk_report.lua URL -- BODY.json
-- The last line of stdout is `BENCH_JSON {...}` with latencies in microseconds.
-- wrk keeps one latency distribution for all answers; `admitted_p99_us` is its percentile
-- 100 - a (a: the share of 2xx answers, in percent of one): the 99th percentile of the 2xx
-- answers if every refusal was faster than every 2xx answer, and an upper bound of it either
-- way (the slowest a% of all answers hold at least the slowest a% of the 2xx ones).
-- `refused_p99_us` is percentile 99 x (1 - a) under the same assumption (an estimate only).

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
  status_503 = 0
  retry_after = 0
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non_2xx = non_2xx + 1
    if status == 503 then
      status_503 = status_503 + 1
      if headers["retry-after"] or headers["Retry-After"] then
        retry_after = retry_after + 1
      end
    end
  end
end

function done(summary, latency, requests)
  local non_2xx_total, status_503_total, retry_after_total = 0, 0, 0
  for _, thread in ipairs(threads) do
    non_2xx_total = non_2xx_total + thread:get("non_2xx")
    status_503_total = status_503_total + thread:get("status_503")
    retry_after_total = retry_after_total + thread:get("retry_after")
  end
  local admitted = 1.0
  if summary.requests > 0 then
    admitted = (summary.requests - non_2xx_total) / summary.requests
  end
  local admitted_p99, refused_p99 = latency:percentile(100 - admitted), 0
  if admitted < 1 then
    refused_p99 = latency:percentile(math.max(99 * (1 - admitted), 0.001))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, '
      .. '"non_2xx": %d, "errors_connect": %d, "errors_read": %d, "errors_write": %d, '
      .. '"errors_timeout": %d, "status_503": %d, "retry_after_503": %d, '
      .. '"admitted_p99_us": %d, "refused_p99_us": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, non_2xx_total, e.connect, e.read, e.write, e.timeout,
    status_503_total, retry_after_total, admitted_p99, refused_p99))
end
