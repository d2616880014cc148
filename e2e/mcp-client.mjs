// Drives the official MCP TypeScript SDK client against a running Gatehouse from nothing
// but its URL: 401 challenge → protected-resource metadata → AS metadata → dynamic
// registration → authorization (consent approved by a scripted user) → token →
// tools/list and tools/call → refresh → revoke.
//
// Usage: node mcp-client.mjs <base-url> <email> <password>

import assert from 'node:assert/strict';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError, auth } from '@modelcontextprotocol/sdk/client/auth.js';

import { approveAsUser } from './lib.mjs';

const [base, email, password] = process.argv.slice(2);
const serverUrl = new URL('/api/experimental/mcp/http', base);
const redirectUrl = 'http://127.0.0.1:8976/callback';

const seen = { redirectedTo: null, code: null, iss: null };

class ScriptedProvider {
  constructor() { this.info = undefined; this.saved = undefined; this.verifier = undefined; }
  get redirectUrl() { return redirectUrl; }
  get clientMetadata() {
    return {
      client_name: 'Gatehouse e2e (MCP SDK)',
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  clientInformation() { return this.info; }
  saveClientInformation(info) { this.info = info; }
  tokens() { return this.saved; }
  saveTokens(tokens) { this.saved = tokens; }
  saveCodeVerifier(v) { this.verifier = v; }
  codeVerifier() { return this.verifier; }
  async redirectToAuthorization(url) {
    seen.redirectedTo = url;
    const back = await approveAsUser(url.toString(), { email, password, expectApp: 'Gatehouse e2e (MCP SDK)' });
    assert.equal(back.origin + back.pathname, redirectUrl);
    seen.code = back.searchParams.get('code');
    seen.iss = back.searchParams.get('iss');
    assert.ok(seen.code, `no code in ${back}`);
  }
}

async function connect(provider) {
  const client = new Client({ name: 'gatehouse-e2e', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider });
  await client.connect(transport);
  return { client, transport };
}

const provider = new ScriptedProvider();

// 1. Anonymous: the SDK discovers, registers, and sends the user to consent.
const first = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider });
const firstClient = new Client({ name: 'gatehouse-e2e', version: '1.0.0' });
await assert.rejects(firstClient.connect(first), UnauthorizedError);
assert.ok(provider.info?.client_id, 'the client registered itself (RFC 7591)');
assert.equal(provider.info.client_secret, undefined, 'a public client gets no secret');
const authz = seen.redirectedTo;
assert.equal(authz.pathname, '/oauth2/authorize');
assert.equal(authz.searchParams.get('code_challenge_method'), 'S256');
assert.equal(authz.searchParams.get('resource'), serverUrl.toString(), 'RFC 8707 resource is the MCP endpoint');
assert.equal(authz.searchParams.get('scope'), 'user:read workspace:read template:read', 'scope from the 401 challenge');
assert.equal(seen.iss, base.replace(/\/$/, ''), 'RFC 9207 iss in the authorization response');

// 2. Code → tokens, bound to the MCP endpoint.
await first.finishAuth(seen.code);
const issued = provider.saved;
assert.ok(issued.access_token && issued.refresh_token);
assert.equal(issued.scope, 'user:read workspace:read template:read');

// 3. Tools, as the signed-in user.
let { client } = await connect(provider);
const { tools } = await client.listTools();
assert.deepEqual(tools.map((t) => t.name).sort(), ['coder_get_authenticated_user', 'coder_list_templates', 'coder_list_workspaces']);
let result = await client.callTool({ name: 'coder_get_authenticated_user', arguments: {} });
assert.equal(result.isError, false);
assert.equal(JSON.parse(result.content[0].text).email, email);
result = await client.callTool({ name: 'coder_list_workspaces', arguments: { owner: 'me' } });
assert.equal(result.isError, false);
await client.close();

// The token is for the MCP endpoint only.
let res = await fetch(new URL('/api/v2/users/me', base), { headers: { authorization: `Bearer ${issued.access_token}` } });
assert.equal(res.status, 401, 'an MCP-bound token is refused by the rest of the API');

// 4. Refresh: the SDK rotates the pair; the old access token stops working.
assert.equal(await auth(provider, { serverUrl }), 'AUTHORIZED');
const refreshed = provider.saved;
assert.notEqual(refreshed.access_token, issued.access_token);
assert.notEqual(refreshed.refresh_token, issued.refresh_token);
const rpc = (token) => fetch(serverUrl, {
  method: 'POST',
  headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
  body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
});
assert.equal((await rpc(issued.access_token)).status, 401);
assert.equal((await rpc(refreshed.access_token)).status, 200);
({ client } = await connect(provider));
result = await client.callTool({ name: 'coder_list_templates', arguments: {} });
assert.equal(result.isError, false);
await client.close();

// 5. Revoke (RFC 7009) at the advertised endpoint: both tokens die.
const meta = await (await fetch(new URL('/.well-known/oauth-authorization-server', base))).json();
res = await fetch(meta.revocation_endpoint, {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({ token: refreshed.refresh_token, token_type_hint: 'refresh_token', client_id: provider.info.client_id }),
});
assert.equal(res.status, 200);
assert.equal((await rpc(refreshed.access_token)).status, 401);
res = await fetch(meta.token_endpoint, {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshed.refresh_token, client_id: provider.info.client_id }),
});
assert.equal(res.status, 400);
assert.equal((await res.json()).error, 'invalid_grant');

console.log('mcp-client: discovery, registration, consent, token, tools, refresh and revoke all passed');
