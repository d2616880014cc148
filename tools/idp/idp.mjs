// A real OpenID provider (panva's oidc-provider) for Gatehouse's load harness and tests.
//
// Usage: node idp.mjs [port]            (port 0 or absent: any free port)
// Configuration (JSON in the IDP_CONFIG environment variable, every field optional):
//   clients:       oidc-provider client metadata, plus `pkce_required: true` to make the
//                  provider refuse an authorization request without a code_challenge
//   ttl:           seconds per token kind, e.g. {"AccessToken": 2, "IdToken": 60}
//   rotate:        rotate refresh tokens on every use (default true, as Gatehouse does)
//   record:        keep the authorize and token requests for /_harness/requests (tests)
//   tls:           {"cert": <PEM file>, "key": <PEM file>}: serve HTTPS (the issuer is
//                  then https://127.0.0.1:<port>)
// Once listening it prints one JSON line on stdout: {"issuer": "http://127.0.0.1:<port>"}.
//
// Besides the provider's own endpoints, /_harness/* lets a harness set things up and look
// at what the provider saw. It is not part of any protocol and is bound to 127.0.0.1 only:
//   POST /_harness/grants?client_id=&account=&count=  → {access_tokens, refresh_tokens}
//   GET  /_harness/requests                           → the authorize and token requests seen
//   POST /_harness/refresh-failures?count=N           → the next N refresh grants fail
//                                                       (needs record)
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';

import Provider from 'oidc-provider';

const config = JSON.parse(process.env.IDP_CONFIG || '{}');
// stdout carries only the announcement; a parent that stops reading it must not kill us.
process.stdout.on('error', () => {});
console.log = console.error;
console.info = console.error;
const port = Number(process.argv[2] || 0);
const host = '127.0.0.1';

const defaultClient = {
  client_id: 'bench',
  client_secret: 'bench-secret-bench-secret-bench-secret',
  redirect_uris: ['http://127.0.0.1/callback'],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_post',
};
const clients = (config.clients || [defaultClient]).map(({ pkce_required, ...metadata }) => metadata);
const pkceRequired = new Set(
  (config.clients || []).filter((c) => c.pkce_required).map((c) => c.client_id),
);

// What the provider was asked, so tests can prove what a relying party sent.
const seen = [];
let refreshFailures = 0;

const server = config.tls
  ? https.createServer({ cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) })
  : http.createServer();
server.listen(port, host, () => {
  const issuer = `${config.tls ? 'https' : 'http'}://${host}:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients,
    ttl: { AccessToken: 3600, IdToken: 3600, RefreshToken: 14 * 24 * 3600, ...config.ttl },
    rotateRefreshToken: config.rotate ?? true,
    pkce: { required: (_ctx, client) => pkceRequired.has(client.clientId) },
    scopes: ['openid', 'offline_access', 'email', 'profile'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['preferred_username', 'name'],
    },
    // Any login name is an account; its e-mail is <name>@example.com.
    async findAccount(_ctx, id) {
      return {
        accountId: id,
        async claims() {
          return {
            sub: id,
            email: `${id}@example.com`,
            email_verified: true,
            preferred_username: id,
            name: id,
          };
        },
      };
    },
    // Consent is implied: the relying party is ours, so the test drives only the login form.
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId
        || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope(ctx.oidc.params.scope || 'openid');
      await grant.save();
      return grant;
    },
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    features: { devInteractions: { enabled: true }, revocation: { enabled: true } },
    cookies: { keys: ['gatehouse-idp-test-cookie-key'] },
  });
  provider.on('server_error', (_ctx, err) => console.error('idp server_error', err));

  if (config.record) {
    provider.use(async (ctx, next) => {
      if (ctx.path === '/auth') seen.push({ path: ctx.path, query: ctx.query });
      await next();
    });
  }

  const callback = provider.callback();
  server.on('request', async (req, res) => {
    if (!req.url.startsWith('/_harness/')) {
      if (config.record && req.url === '/token' && req.method === 'POST') {
        // Read here, before the provider parses it, so a test can see what was sent.
        const raw = await readBody(req);
        const form = Object.fromEntries(new URLSearchParams(raw));
        seen.push({ path: '/token', form });
        if (refreshFailures > 0 && form.grant_type === 'refresh_token') {
          refreshFailures -= 1;
          res.writeHead(400, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: 'invalid_grant', error_description: 'refresh refused by the test harness' }));
          return;
        }
        req.body = raw; // the provider falls back to an already-read body
      }
      callback(req, res);
      return;
    }
    try {
      const url = new URL(req.url, issuer);
      let body;
      if (url.pathname === '/_harness/grants' && req.method === 'POST') {
        body = await mintGrants(provider, url.searchParams);
      } else if (url.pathname === '/_harness/requests') {
        body = seen;
      } else if (url.pathname === '/_harness/refresh-failures' && req.method === 'POST') {
        refreshFailures = Number(url.searchParams.get('count') || 1);
        body = { refresh_failures: refreshFailures };
      } else {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    } catch (err) {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: String(err) }));
    }
  });

  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

// Mints `count` grants for one client and account, each with an access token (scope
// openid, good for userinfo) and a refresh token, as if a code exchange had happened.
async function mintGrants(provider, params) {
  const client = await provider.Client.find(params.get('client_id') || defaultClient.client_id);
  if (!client) throw new Error('unknown client_id');
  const accountId = params.get('account') || 'bench';
  const count = Number(params.get('count') || 1);
  const out = { access_tokens: [], refresh_tokens: [] };
  for (let i = 0; i < count; i += 1) {
    const grant = new provider.Grant({ accountId, clientId: client.clientId });
    grant.addOIDCScope('openid offline_access');
    const grantId = await grant.save();
    const common = { accountId, client, grantId, gty: 'authorization_code' };
    out.access_tokens.push(await new provider.AccessToken({ ...common, scope: 'openid' }).save());
    // Without `openid`, a refresh returns no ID token: like for like with Gatehouse's grant,
    // which signs nothing.
    out.refresh_tokens.push(
      await new provider.RefreshToken({ ...common, scope: 'offline_access' }).save(),
    );
  }
  return out;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString()));
    req.on('error', reject);
  });
}
