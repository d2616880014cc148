// A real headless Chromium signs in on Gatehouse's login page and approves an OAuth2
// consent page, then the code it brings back is exchanged for a working token.
//
// Usage: node browser-consent.mjs <base-url> <email> <password>

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';

import { chromium } from 'playwright-core';

const [base, email, password] = process.argv.slice(2);

// The client's callback: a local server that records what it receives.
let received;
const callback = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  // The browser also asks for /favicon.ico.
  if (url.pathname === '/callback') received = url;
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end('<p id="done">Back at the client.</p>');
});
await new Promise((r) => callback.listen(0, '127.0.0.1', r));
const redirectUri = `http://127.0.0.1:${callback.address().port}/callback`;

// A public client registered as an MCP client would (RFC 7591).
let res = await fetch(new URL('/oauth2/register', base), {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ client_name: 'Browser <Test> App', redirect_uris: ['http://127.0.0.1/callback'], token_endpoint_auth_method: 'none' }),
});
assert.equal(res.status, 201);
const client = await res.json();

const verifier = crypto.randomBytes(32).toString('base64url');
const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
const state = crypto.randomBytes(8).toString('hex');
const authorize = new URL('/oauth2/authorize', base);
authorize.search = new URLSearchParams({
  response_type: 'code', client_id: client.client_id, redirect_uri: redirectUri,
  code_challenge: challenge, code_challenge_method: 'S256', state, scope: 'user:read workspace:read',
}).toString();

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage();
  await page.goto(authorize.toString());
  // Chromium reached the deployment's own origin (over https in run.sh, with the test CA
  // trusted in its NSS database: a certificate it did not trust would have failed goto).
  assert.equal(new URL(page.url()).origin, new URL(base).origin);
  // Not signed in: the login page, which will come back here.
  assert.equal(new URL(page.url()).pathname, '/login');
  await page.fill('#email', email);
  await page.fill('#password', password);
  await Promise.all([page.waitForURL(/\/oauth2\/authorize/), page.click('#login-button')]);
  // The consent page: escaped app name, where it will send us, what it asks for.
  assert.equal(await page.textContent('#app-name'), 'Browser <Test> App');
  assert.equal(await page.textContent('#redirect-host'), `127.0.0.1:${callback.address().port}`);
  const scopes = await page.$$eval('#scopes li', (items) => items.map((li) => li.textContent.trim()));
  assert.deepEqual(scopes, ['user:read', 'workspace:read']);
  await Promise.all([page.waitForURL(`${redirectUri}**`), page.click('#allow-button')]);
  assert.equal(await page.textContent('#done'), 'Back at the client.');
} finally {
  await browser.close();
  callback.close();
}

assert.equal(received.searchParams.get('state'), state);
assert.equal(received.searchParams.get('iss'), base.replace(/\/$/, ''));
const code = received.searchParams.get('code');
res = await fetch(new URL('/oauth2/tokens', base), {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: verifier, client_id: client.client_id, redirect_uri: redirectUri }),
});
assert.equal(res.status, 200, await res.clone().text());
const tokens = await res.json();
res = await fetch(new URL('/api/v2/users/me', base), { headers: { authorization: `Bearer ${tokens.access_token}` } });
assert.equal(res.status, 200);
assert.equal((await res.json()).email, email);
console.log('browser-consent: Chromium signed in, approved consent, exchanged the code: passed');
