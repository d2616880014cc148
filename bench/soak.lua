-- The memory soak (issue #8): many distinct tokens from many distinct addresses.
--
-- The issue's scenario is 100k distinct tokens and addresses: a run bounded in time, not
-- in distinct values, would measure the machine's speed rather than the server's memory.
--
-- SOAK_MODE=seed: every request creates an API token named soak-<thread>-<n> with the
--   session in SESSION and appends the key to $SOAK_DIR/keys-<thread>.txt, until the
--   thread has made SOAK_WANT keys (then it only asks for /healthz). bench/run repeats
--   the seeding in rounds (SOAK_ROUND keeps names unique) until there are enough.
-- SOAK_MODE=load: requests alternate between the seeded keys (each used in turn, so every
--   one lands in the authentication cache) and well-formed keys that do not exist, each
--   from a client address in X-Forwarded-For, which the server is told to believe from
--   127.0.0.1. Keys, never-issued keys and addresses each cycle through SOAK_DISTINCT
--   distinct values.
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("index", counter)
end

function init(args)
  mode = os.getenv("SOAK_MODE")
  dir = os.getenv("SOAK_DIR")
  n = 0
  distinct = tonumber(os.getenv("SOAK_DISTINCT") or "100000")
  if mode == "seed" then
    want = tonumber(os.getenv("SOAK_WANT"))
    round = os.getenv("SOAK_ROUND")
    seeded = 0
    session = os.getenv("SESSION")
    out = io.open(dir .. "/keys-" .. index .. ".txt", "a")
  else
    keys = {}
    threads = tonumber(os.getenv("SOAK_THREADS"))
    for t = 1, threads do
      for line in io.lines(dir .. "/keys-" .. t .. ".txt") do
        if #keys < distinct then
          keys[#keys + 1] = line
        end
      end
    end
    -- Each thread starts at its own offset so the threads do not walk in step.
    n = math.floor(#keys * (index - 1) / threads)
  end
end

local function address(i)
  -- 100.64.0.0/10 (shared address space): distinct per request, never a trusted proxy.
  local f = math.floor
  return string.format("100.%d.%d.%d", 64 + f(i / 65536) % 64, f(i / 256) % 256, i % 256)
end

function request()
  n = n + 1
  if mode == "seed" then
    if seeded >= want then
      return wrk.format("GET", "/healthz")
    end
    local body = string.format('{"token_name":"soak-%s-%d-%d","lifetime":0}', round, index, n)
    return wrk.format("POST", "/api/v2/users/me/keys/tokens", {
      ["Coder-Session-Token"] = session,
      ["Content-Type"] = "application/json",
      ["X-Coder-Bypass-Ratelimit"] = "true",
    }, body)
  end
  local token
  local i = (n * threads + index) % distinct
  if n % 2 == 0 then
    token = keys[(n / 2) % #keys + 1]
  else
    -- The shape of a real key (10-character id, 22-character secret), never issued.
    local j = (math.floor(n / 2) * threads + index) % distinct
    token = string.format("%010x-%022x", j, j)
  end
  return wrk.format("GET", "/api/v2/users/me", {
    ["Coder-Session-Token"] = token,
    ["X-Forwarded-For"] = address(i),
  })
end

function response(status, headers, body)
  if mode == "seed" and status == 201 then
    seeded = seeded + 1
    out:write(string.match(body, '"key":"([^"]+)"') .. "\n")
    out:flush()
  end
end
