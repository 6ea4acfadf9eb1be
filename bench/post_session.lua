-- wrk script (scripts/bench.sh): POST /api/v1/sessions. Arguments after `--`: the API key
-- ("-" for none) and "idempotent" to give every request its own Idempotency-Key.
local token, idempotent
local counter = 0
local prefix = tostring(os.time()) .. "-" .. tostring(math.random(1000000000))
local body = '{"user_id":"bench","title":"benchmark session","metadata":{"source":"wrk"}}'

function init(args)
  token = args[1] ~= "-" and args[1] or nil
  idempotent = args[2] == "idempotent"
end

function request()
  counter = counter + 1
  local headers = { ["Content-Type"] = "application/json" }
  if token then headers["Authorization"] = "Bearer " .. token end
  if idempotent then headers["Idempotency-Key"] = prefix .. "-" .. counter end
  return wrk.format("POST", "/api/v1/sessions", headers, body)
end
