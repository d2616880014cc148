// Helpers shared by the end-to-end scripts: a tiny cookie jar and a scripted user who
// signs in on Gatehouse's login page and approves the consent page, as a browser would.

import assert from 'node:assert/strict';

export class CookieJar {
  constructor() { this.cookies = new Map(); }
  store(res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const i = pair.indexOf('=');
      this.cookies.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
    }
  }
  header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  async fetch(url, init = {}) {
    const headers = new Headers(init.headers ?? {});
    if (this.cookies.size) headers.set('cookie', this.header());
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    this.store(res);
    return res;
  }
}

function hidden(html, name) {
  const m = html.match(new RegExp(`name="${name}" value="([^"]*)"`));
  assert.ok(m, `no ${name} field in page`);
  return m[1];
}

function formAction(html, id) {
  const m = html.match(new RegExp(`<form id="${id}" method="POST" action="([^"]*)"`));
  assert.ok(m, `no form ${id}`);
  return m[1].replaceAll('&#38;', '&').replaceAll('&amp;', '&');
}

/**
 * Follows an authorization URL the way a user would: to the login page, signs in, reads
 * the consent page, approves it, and returns the URL Gatehouse redirects back to.
 */
export async function approveAsUser(authorizationUrl, { email, password, expectApp }) {
  const base = new URL(authorizationUrl).origin;
  const jar = new CookieJar();
  let res = await jar.fetch(authorizationUrl);
  assert.equal(res.status, 303, 'an anonymous browser is sent to the login page');
  const loginUrl = new URL(res.headers.get('location'), base);
  assert.equal(loginUrl.pathname, '/login');
  res = await jar.fetch(loginUrl);
  assert.equal(res.status, 200);
  let html = await res.text();
  res = await jar.fetch(new URL(formAction(html, 'login-form'), base), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ email, password, csrf_token: hidden(html, 'csrf_token') }),
  });
  assert.equal(res.status, 303, `login failed: ${res.status}`);
  const back = new URL(res.headers.get('location'), base);
  res = await jar.fetch(back);
  assert.equal(res.status, 200, 'the consent page is shown');
  html = await res.text();
  if (expectApp) assert.ok(html.includes(expectApp), `consent page names ${expectApp}`);
  res = await jar.fetch(new URL(formAction(html, 'allow-form'), base), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf_token: hidden(html, 'csrf_token') }),
  });
  assert.equal(res.status, 302, `consent failed: ${res.status} ${await res.text()}`);
  return new URL(res.headers.get('location'));
}
