-- wrk script (scripts/bench_knowledge.sh): the same deterministic chat completion every time,
-- so after the first it is answered by the exact response cache. Argument after `--`: "hit"
-- (the cache answers) or "models" (GET /v1/models: the same server path with no cache).
local mode
local body = '{"model":"fake-model","temperature":0,' ..
             '"messages":[{"role":"user","content":"How long do refunds take?"}]}'

function init(args)
  mode = args[1] or "hit"
end

function request()
  if mode == "models" then return wrk.format("GET", "/v1/models") end
  return wrk.format("POST", "/v1/chat/completions", { ["Content-Type"] = "application/json" }, body)
end
