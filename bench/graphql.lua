-- POSTs one GraphQL request body (read from the file named by the first script argument) over
-- and over. Headers come from wrk's -H options, built by bench/wrk.py. Responses that are not a
-- 200, or that carry GraphQL "errors", are counted per thread and summed in done(), which prints
-- one machine-readable line for bench/wrk.py to parse.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "rb"))
  wrk.method = "POST"
  wrk.body = file:read("*a")
  file:close()
  non200 = 0
  graphql_errors = 0
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
  elseif string.find(body, '"errors"', 1, true) then
    graphql_errors = graphql_errors + 1
  end
end

function done(summary, latency, requests)
  local bad, errors = 0, 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non200")
    errors = errors + thread:get("graphql_errors")
  end
  io.write(string.format(
    "BENCH_RESULT {\"requests\": %d, \"duration_us\": %d, \"p50_us\": %d, \"p90_us\": %d, "
      .. "\"p99_us\": %d, \"max_us\": %d, \"mean_us\": %.1f, \"non200\": %d, "
      .. "\"graphql_errors\": %d, \"connect_errors\": %d, \"read_errors\": %d, "
      .. "\"write_errors\": %d, \"timeouts\": %d}\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, bad, errors,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout
  ))
end
