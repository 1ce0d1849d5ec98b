-- The one wrk script of `cargo xtask bench`: Berth and the floor get the same requests.
-- Set by the driver: BENCH_SCENARIO (static|get|post|list|patch|registry), BENCH_TOKEN,
-- BENCH_IDS (a file of guids to cycle through), BENCH_QUERY (the list's path and query),
-- BENCH_ORGANIZATION (where POST creates), BENCH_BODY (resolve's body), BENCH_RUN (unique per
-- run), BENCH_THREADS.

local scenario = os.getenv("BENCH_SCENARIO")
local token = os.getenv("BENCH_TOKEN") or ""
local ids_file = os.getenv("BENCH_IDS") or ""
local query = os.getenv("BENCH_QUERY") or ""
local organization = os.getenv("BENCH_ORGANIZATION") or ""
local body = os.getenv("BENCH_BODY") or ""
local run = os.getenv("BENCH_RUN") or "0"
local thread_total = tonumber(os.getenv("BENCH_THREADS") or "1")

local next_thread = 0
function setup(thread)
  next_thread = next_thread + 1
  thread:set("thread_number", next_thread)
end

function init(args)
  counter = 0
  ids = {}
  if ids_file ~= "" then
    for line in io.lines(ids_file) do
      if line ~= "" then ids[#ids + 1] = line end
    end
  end
  headers = { ["Content-Type"] = "application/json" }
  if token ~= "" then headers["Authorization"] = "Bearer " .. token end
end

-- Each thread takes every thread_total-th id, so threads never send the same one at once.
local function next_id()
  local index = (counter * thread_total + thread_number - 1) % #ids + 1
  return ids[index]
end

function request()
  counter = counter + 1
  if scenario == "static" then
    return wrk.format("GET", "/static", headers)
  elseif scenario == "get" then
    return wrk.format("GET", "/v3/registry_credentials/" .. next_id(), headers)
  elseif scenario == "patch" then
    local body = '{"password":"pw-' .. run .. '-' .. thread_number .. '-' .. counter .. '"}'
    return wrk.format("PATCH", "/v3/registry_credentials/" .. next_id(), headers, body)
  elseif scenario == "post" then
    local body = '{"location":"bench-' .. run .. '-' .. thread_number .. '-' .. counter ..
      '.example.com/team","username":"robot","password":"s3cret-' .. counter ..
      '","relationships":{"organization":{"data":{"guid":"' .. organization ..
      '"}}},"metadata":{"labels":{"env":"prod","team":"team-01","tier":"gold"}}}'
    return wrk.format("POST", "/v3/registry_credentials", headers, body)
  elseif scenario == "list" then
    return wrk.format("GET", query, headers)
  elseif scenario == "resolve" then
    return wrk.format("POST", "/v3/registry_credentials/actions/resolve", headers, body)
  elseif scenario == "registry" then
    return wrk.format("POST", "/api/v1/organizations/" .. next_id() .. "/registry", headers, "{}")
  end
  error("unknown BENCH_SCENARIO " .. tostring(scenario))
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"errors":%d,"non_2xx":%d,' ..
    '"p50_us":%d,"p99_us":%d,"p999_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration,
    errors.connect + errors.read + errors.write + errors.status + errors.timeout,
    errors.status,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.mean))
end
