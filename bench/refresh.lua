-- The refresh_token grant under load: each wrk thread owns one grant and rotates it, so
-- no two requests ever present the same refresh token (which would revoke the grant).
local chains = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("index", counter)
end

function init(args)
  refresh = os.getenv("REFRESH_" .. index)
  client = os.getenv("CLIENT_ID")
  secret = os.getenv("CLIENT_SECRET")
  path = os.getenv("TOKEN_PATH") or "/oauth2/tokens"
  failures = 0
end

function request()
  local body = "grant_type=refresh_token&refresh_token=" .. refresh ..
    "&client_id=" .. client .. "&client_secret=" .. secret
  return wrk.format("POST", path,
    {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end

function response(status, headers, body)
  if status == 200 then
    refresh = string.match(body, '"refresh_token":"([^"]+)"')
  else
    failures = failures + 1
  end
end
