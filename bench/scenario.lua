-- wrk script: replay the requests of the file named by BENCH_REQUESTS, one per line:
--   METHOD PATH [JSON BODY]
-- and print the figures as one JSON line prefixed with BENCH_JSON.
local requests = {}
local position = 0

function init(args)
  local file = os.getenv("BENCH_REQUESTS")
  for line in io.lines(file) do
    local method, path, body = line:match("^(%S+) (%S+) ?(.*)$")
    local headers = { ["Accept"] = "application/fhir+json" }
    if body == "" then
      body = nil
    else
      headers["Content-Type"] = "application/fhir+json"
    end
    requests[#requests + 1] = wrk.format(method, path, headers, body)
  end
  position = math.random(#requests)
end

function request()
  position = position % #requests + 1
  return requests[position]
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"non_2xx":%d,"socket_errors":%d,' ..
    '"timeouts":%d,"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p95":%d,"p99":%d,"max":%d}}\n',
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write, errors.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency.max))
end
