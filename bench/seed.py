"""Seeds a running Gatehouse for the load harness and prints what the scenarios need as
JSON: an API key, OAuth2 access tokens, one refresh token per wrk thread (each thread
rotates its own chain), and an agent token of a running workspace.

Usage: python3 seed.py <base-url> <refresh-chains>
"""

import base64
import hashlib
import json
import sys
import time
import urllib.parse
import urllib.request
import uuid

BASE = sys.argv[1].rstrip("/")
CHAINS = int(sys.argv[2])
EMAIL, PASSWORD = "bench@example.com", "SomeSecurePassword!"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


opener = urllib.request.build_opener(NoRedirect)


def call(method, path, body=None, token=None, form=None):
    headers = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["content-type"] = "application/x-www-form-urlencoded"
    if token:
        headers["coder-session-token"] = token
    req = urllib.request.Request(BASE + path, data=data, method=method, headers=headers)
    try:
        res = opener.open(req)
    except urllib.error.HTTPError as e:
        res = e
    text = res.read().decode()
    return res.status, res.headers, (json.loads(text) if text.startswith(("{", "[")) else text)


call("POST", "/api/v2/users/first", {"email": EMAIL, "username": "bench", "password": PASSWORD})
_, _, login = call("POST", "/api/v2/users/login", {"email": EMAIL, "password": PASSWORD})
session = login["session_token"]
_, _, key = call("POST", "/api/v2/users/me/keys/tokens", {"token_name": "bench", "lifetime": 0}, session)

_, _, app = call("POST", "/api/v2/oauth2-provider/apps", {"name": "bench", "redirect_uris": ["https://client.example/cb"]}, session)
_, _, secret = call("POST", f"/api/v2/oauth2-provider/apps/{app['id']}/secrets", None, session)
client_id, client_secret = app["id"], secret["client_secret_full"]


def grant():
    verifier = base64.urlsafe_b64encode(uuid.uuid4().bytes * 2).decode().rstrip("=")
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    q = urllib.parse.urlencode({"response_type": "code", "client_id": client_id, "code_challenge": challenge, "code_challenge_method": "S256"})
    status, headers, _ = call("POST", f"/oauth2/authorize?{q}", None, session)
    assert status == 302, status
    code = urllib.parse.parse_qs(urllib.parse.urlparse(headers["location"]).query)["code"][0]
    status, _, tokens = call("POST", "/oauth2/tokens", form={
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
        "client_id": client_id, "client_secret": client_secret})
    assert status == 200, tokens
    return tokens


grants = [grant() for _ in range(CHAINS + 1)]

agent_token = str(uuid.uuid4())
plan = {"resources": [{"name": "dev", "type": "echo_container", "agents": [{"name": "main", "auth_token": agent_token}]}]}
_, _, file = call("POST", "/api/v2/files", plan, session)
_, _, version = call("POST", "/api/v2/organizations/default/templateversions",
                     {"storage_method": "file", "file_id": file["hash"], "provisioner": "echo"}, session)
for _ in range(100):
    _, _, v = call("GET", f"/api/v2/templateversions/{version['id']}", None, session)
    if v["job"]["status"] == "succeeded":
        break
    time.sleep(0.1)
_, _, template = call("POST", "/api/v2/organizations/default/templates",
                      {"name": "bench", "template_version_id": version["id"]}, session)
call("POST", "/api/v2/users/me/workspaces", {"name": "dev", "template_id": template["id"]}, session)
for _ in range(100):
    status, _, _ = call("GET", "/api/v2/workspaceagents/me/manifest", None, agent_token)
    if status == 200:
        break
    time.sleep(0.1)
assert status == 200, "the agent never became reachable"

print(json.dumps({
    "api_key": key["key"],
    "oauth2_access": grants[0]["access_token"],
    "refresh_tokens": [g["refresh_token"] for g in grants[1:]],
    "client_id": client_id,
    "client_secret": client_secret,
    "agent_token": agent_token,
}))
