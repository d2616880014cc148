-- The memory soak (issue #8): many distinct tokens from many distinct addresses.
--
-- SOAK_MODE=seed: every request creates an API token named soak-<thread>-<n> with the
--   session in SESSION and appends the key to $SOAK_DIR/keys-<thread>.txt.
-- SOAK_MODE=load: requests alternate between the seeded keys (each used in turn, so every
--   one lands in the authentication cache) and well-formed keys that do not exist (a
--   fresh one every time), each from its own client address in X-Forwarded-For, which
--   the server is told to believe from 127.0.0.1.
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("index", counter)
end

function init(args)
  mode = os.getenv("SOAK_MODE")
  dir = os.getenv("SOAK_DIR")
  n = 0
  if mode == "seed" then
    session = os.getenv("SESSION")
    out = io.open(dir .. "/keys-" .. index .. ".txt", "a")
  else
    keys = {}
    threads = tonumber(os.getenv("SOAK_THREADS"))
    for t = 1, threads do
      for line in io.lines(dir .. "/keys-" .. t .. ".txt") do
        keys[#keys + 1] = line
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
    local body = string.format('{"token_name":"soak-%d-%d","lifetime":0}', index, n)
    return wrk.format("POST", "/api/v2/users/me/keys/tokens", {
      ["Coder-Session-Token"] = session,
      ["Content-Type"] = "application/json",
      ["X-Coder-Bypass-Ratelimit"] = "true",
    }, body)
  end
  local token
  if n % 2 == 0 then
    token = keys[(n / 2) % #keys + 1]
  else
    -- The shape of a real key (10-character id, 22-character secret), never issued.
    token = string.format("%02d%08x-%022x", index, n % 0xffffffff, n)
  end
  return wrk.format("GET", "/api/v2/users/me", {
    ["Coder-Session-Token"] = token,
    ["X-Forwarded-For"] = address(n * threads + index),
  })
end

function response(status, headers, body)
  if mode == "seed" and status == 201 then
    out:write(string.match(body, '"key":"([^"]+)"') .. "\n")
    out:flush()
  end
end
