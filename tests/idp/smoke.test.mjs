// Smoke test of the test IdP: `node --test tests/idp/` (after `npm ci` in tests/idp).
// Starts server.mjs on a free port and checks what ringgate's tests rely on.

import { test, before, after, beforeEach } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const HERE = new URL('.', import.meta.url);
const CONFIG = JSON.parse(readFileSync(new URL('clients.json', HERE), 'utf8'));
const client = (id) => CONFIG.clients.find((c) => c.client_id === id);
const SPECIAL = 'p+a:s/s=w&o rd';

let proc;
let issuer;
let control;

before(async () => {
  proc = spawn(process.execPath, [new URL('server.mjs', HERE).pathname, '--port', '0', '--extra-clients', '3'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: proc.stdout });
  const first = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('IdP did not start within 30 s')), 30000);
    lines.once('line', (l) => { clearTimeout(timer); resolve(l); });
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`IdP exited with ${code}`)); });
  });
  const m = /^IDP_READY (http:\/\/127\.0\.0\.1:\d+) (http:\/\/127\.0\.0\.1:\d+\/_control)$/.exec(first);
  assert.ok(m, `unexpected first line: ${first}`);
  [, issuer, control] = m;
});

after(async () => {
  if (proc && proc.exitCode === null) {
    const exited = new Promise((r) => { proc.once('exit', r); });
    proc.kill('SIGTERM');
    await exited;
  }
});

beforeEach(async () => {
  await ctl('/reset');
});

async function ctl(path, body = {}, base = control) {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200, `${path}: ${await res.clone().text()}`);
  return res.json();
}

async function get(url) {
  const res = await fetch(url);
  assert.equal(res.status, 200, url);
  return res.json();
}

// RFC 6749 §2.3.1: id and secret are application/x-www-form-urlencoded before
// being joined with ':' and base64-encoded.
const formEncode = (s) => new URLSearchParams({ v: s }).toString().slice(2);
const basic = (id, secret) => `Basic ${Buffer.from(`${formEncode(id)}:${formEncode(secret)}`).toString('base64')}`;

async function tokenRequest({
  id, secret, method = 'basic', scope = 'openid', extra = {}, rawBasic = false, base = issuer,
}) {
  const form = new URLSearchParams({ grant_type: 'client_credentials' });
  if (scope !== null) form.set('scope', scope); // null: no scope parameter
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (method === 'basic') {
    headers.authorization = rawBasic
      ? `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`
      : basic(id, secret);
  } else if (method === 'post') {
    form.set('client_id', id);
    form.set('client_secret', secret);
  } else if (method === 'jwt') {
    const now = Math.floor(Date.now() / 1000);
    const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const input = `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc({
      iss: id, sub: id, aud: `${base}/token`, jti: crypto.randomUUID(), iat: now, exp: now + 60,
    })}`;
    const sig = crypto.createHmac('sha256', secret).update(input).digest('base64url');
    form.set('client_assertion_type', 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
    form.set('client_assertion', `${input}.${sig}`);
  }
  for (const [k, v] of Object.entries(extra)) form.set(k, v);
  const res = await fetch(`${base}/token`, { method: 'POST', headers, body: form.toString() });
  return { status: res.status, body: await res.json() };
}

async function goodToken(id, opts = {}) {
  const c = client(id);
  const method = { client_secret_basic: 'basic', client_secret_post: 'post', client_secret_jwt: 'jwt' }[c.token_endpoint_auth_method];
  const r = await tokenRequest({ id, secret: c.client_secret, method, ...opts });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

const decodePart = (p) => JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));

function verifyJws(token, jwks) {
  const parts = token.split('.');
  assert.equal(parts.length, 3, 'access token is a 3-part JWS');
  const header = decodePart(parts[0]);
  const payload = decodePart(parts[1]);
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, `kid ${header.kid} is in the JWKS`);
  assert.equal(jwk.alg, header.alg);
  assert.equal(jwk.d, undefined, 'JWKS holds no private key material');
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  const data = Buffer.from(`${parts[0]}.${parts[1]}`);
  const sig = Buffer.from(parts[2], 'base64url');
  const hash = { 256: 'sha256', 384: 'sha384', 512: 'sha512' }[header.alg.slice(2)];
  let ok;
  if (header.alg === 'EdDSA') ok = crypto.verify(null, data, key, sig);
  else if (header.alg.startsWith('RS')) ok = crypto.verify(hash, data, key, sig);
  else if (header.alg.startsWith('PS')) {
    ok = crypto.verify(hash, data, {
      key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: Number(header.alg.slice(2)) / 8,
    }, sig);
  } else if (header.alg.startsWith('ES')) ok = crypto.verify(hash, data, { key, dsaEncoding: 'ieee-p1363' }, sig);
  assert.ok(ok, `signature verifies (${header.alg})`);
  return { header, payload };
}

test('discovery and JWKS', async () => {
  const disc = await get(`${issuer}/.well-known/openid-configuration`);
  assert.equal(disc.issuer, issuer);
  assert.equal(disc.token_endpoint, `${issuer}/token`);
  assert.equal(disc.jwks_uri, `${issuer}/jwks`);
  assert.ok(disc.grant_types_supported.includes('client_credentials'));
  for (const m of ['client_secret_basic', 'client_secret_post', 'client_secret_jwt']) {
    assert.ok(disc.token_endpoint_auth_methods_supported.includes(m), m);
  }
  const jwks = await get(disc.jwks_uri);
  const algs = jwks.keys.map((k) => k.alg);
  for (const a of ['RS256', 'PS256', 'ES256', 'EdDSA']) assert.ok(algs.includes(a), a);
  for (const k of jwks.keys) {
    assert.equal(k.use, 'sig');
    assert.ok(k.kid);
    assert.equal(k.d, undefined);
  }
  const counters = await get(`${control}/counters`);
  assert.equal(counters.discovery, 1);
  assert.equal(counters.jwks, 1);
});

test('client_secret_basic gives a verifiable JWT access token', async () => {
  const body = await goodToken('basic-client');
  assert.equal(body.token_type, 'Bearer');
  assert.equal(body.expires_in, 300);
  assert.equal(body.scope, 'openid');
  const jwks = await get(`${issuer}/jwks`);
  const { header, payload } = verifyJws(body.access_token, jwks);
  assert.equal(header.alg, 'RS256');
  assert.equal(header.typ, 'at+jwt');
  assert.equal(payload.iss, issuer);
  assert.equal(payload.client_id, 'basic-client');
  assert.equal(payload.sub, 'basic-client');
  assert.equal(payload.scope, 'openid');
  assert.equal(payload.aud, CONFIG.resource);
  assert.equal(payload.exp - payload.iat, 300);
  assert.ok(Math.abs(payload.iat - Date.now() / 1000) < 30);
});

test('client_secret_post and client_secret_jwt', async () => {
  const jwks = await get(`${issuer}/jwks`);
  const post = await goodToken('post-client');
  assert.equal(verifyJws(post.access_token, jwks).payload.client_id, 'post-client');
  const jwt = await goodToken('jwt-client');
  assert.equal(verifyJws(jwt.access_token, jwks).payload.client_id, 'jwt-client');
  const bad = await tokenRequest({ id: 'jwt-client', secret: 'not-the-secret-0123456789abcdefghijkl', method: 'jwt' });
  assert.equal(bad.status, 401);
  assert.equal(bad.body.error, 'invalid_client');
});

test('a client registered for it gets tokens bound to the certificate the terminator passes on', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'idp-mtls-'));
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=caller', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
    const pem = readFileSync(join(dir, 'cert.pem'), 'utf8');
    const der = new crypto.X509Certificate(pem).raw;
    const c = client('mtls-bound-client');
    const send = (headers) => fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams({
        grant_type: 'client_credentials', client_id: c.client_id, client_secret: c.client_secret,
      }).toString(),
    });
    const bound = await send({ 'x-client-certificate': encodeURIComponent(pem) });
    const body = await bound.json();
    assert.equal(bound.status, 200, JSON.stringify(body));
    const { payload } = verifyJws(body.access_token, await get(`${issuer}/jwks`));
    assert.equal(payload.cnf['x5t#S256'], crypto.createHash('sha256').update(der).digest('base64url'));
    const without = await send({});
    assert.equal(without.status, 400);
    assert.equal((await without.json()).error, 'invalid_grant');
    // Other clients' tokens stay unbound, with or without the header.
    const post = client('post-client');
    const plain = await (await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-client-certificate': encodeURIComponent(pem) },
      body: new URLSearchParams({
        grant_type: 'client_credentials', client_id: post.client_id, client_secret: post.client_secret,
      }).toString(),
    })).json();
    assert.equal(decodePart(plain.access_token.split('.')[1]).cnf, undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('secret with + : / = & and a space', async () => {
  const ok = await tokenRequest({ id: 'special-basic', secret: SPECIAL, method: 'basic' });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  // Not form-encoded: the IdP decodes '+' to a space, so the secret no longer matches.
  const raw = await tokenRequest({ id: 'special-basic', secret: SPECIAL, method: 'basic', rawBasic: true });
  assert.equal(raw.status, 401);
  assert.equal(raw.body.error, 'invalid_client');
  const post = await tokenRequest({ id: 'special-post', secret: SPECIAL, method: 'post' });
  assert.equal(post.status, 200, JSON.stringify(post.body));
});

test('strict auth method, wrong secret, grant not allowed', async () => {
  const c = client('basic-client');
  const viaPost = await tokenRequest({ id: c.client_id, secret: c.client_secret, method: 'post' });
  assert.equal(viaPost.status, 401);
  assert.equal(viaPost.body.error, 'invalid_client');
  await ctl('/strict', { enabled: false });
  const lax = await tokenRequest({ id: c.client_id, secret: c.client_secret, method: 'post' });
  assert.equal(lax.status, 200);
  await ctl('/strict', { enabled: true });
  const wrong = await tokenRequest({ id: c.client_id, secret: 'wrong' });
  assert.equal(wrong.status, 401);
  const unknown = await tokenRequest({ id: 'nobody', secret: 'x' });
  assert.equal(unknown.status, 401);
  const ng = client('no-grant-client');
  const noGrant = await tokenRequest({ id: ng.client_id, secret: ng.client_secret });
  assert.equal(noGrant.status, 400);
  const counters = await get(`${control}/counters`);
  assert.deepEqual(counters.token_status['basic-client'], { 200: 1, 401: 2 });
  assert.deepEqual(counters.token_by_method['basic-client'], { client_secret_post: 2, client_secret_basic: 1 });
  assert.equal(counters.token.nobody, 1);
});

test('scopes and audience', async () => {
  const jwks = await get(`${issuer}/jwks`);
  const none = await goodToken('basic-client', { scope: null });
  assert.equal(none.scope, undefined);
  assert.equal(verifyJws(none.access_token, jwks).payload.scope, undefined);
  const some = await goodToken('basic-client', { scope: 'openid read unknown-scope' });
  assert.equal(some.scope, 'openid read');
  const aud = await goodToken('basic-client', { scope: 'read', extra: { resource: 'https://api.example.test/' } });
  assert.equal(verifyJws(aud.access_token, jwks).payload.aud, 'https://api.example.test/');
  const log = await get(`${control}/requests?client_id=basic-client`);
  assert.equal(log.length, 3);
  assert.equal(log[2].params.resource, 'https://api.example.test/');
  assert.equal(log[2].headers.authorization, '<redacted>');
});

test('token_claims reach the access token, only for their client', async () => {
  const jwks = await get(`${issuer}/jwks`);
  const c = client('claims-client');
  const withClaims = verifyJws((await goodToken('claims-client')).access_token, jwks).payload;
  for (const [name, value] of Object.entries(c.token_claims)) {
    assert.deepEqual(withClaims[name], value, name);
  }
  assert.equal(withClaims.client_id, 'claims-client');
  const plain = verifyJws((await goodToken('basic-client')).access_token, jwks).payload;
  assert.equal(plain.groups, undefined);
});

test('the opaque resource gets opaque access tokens', async () => {
  const t = await goodToken('basic-client', { extra: { resource: 'urn:ringgate:opaque' } });
  assert.equal(t.access_token.split('.').length, 1, t.access_token);
  assert.equal(t.token_type, 'Bearer');
});

test('opaque tokens are introspected by another client, counted, and can be faulted inactive', async () => {
  const t = await goodToken('post-client', { extra: { resource: 'urn:ringgate:opaque', scope: 'read' } });
  const introspect = () =>
    fetch(`${issuer}/token/introspection`, {
      method: 'POST',
      headers: {
        authorization: basic('basic-client', client('basic-client').client_secret),
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ token: t.access_token, token_type_hint: 'access_token' }),
    });
  const before = (await get(`${control}/counters`)).introspection;
  const r = await introspect();
  assert.equal(r.status, 200);
  const body = await r.json();
  assert.equal(body.active, true);
  assert.equal(body.client_id, 'post-client');
  assert.equal(body.aud, 'urn:ringgate:opaque');
  assert.equal(body.scope, 'read');
  await ctl('/fault', { target: 'introspection', mode: 'inactive', times: 1 });
  assert.deepEqual(await (await introspect()).json(), { active: false });
  assert.equal((await (await introspect()).json()).active, true, 'times: 1');
  assert.equal((await get(`${control}/counters`)).introspection, before + 3);
});

test('a client registered for it gets signed introspection answers when it asks', async () => {
  const t = await goodToken('post-client', { extra: { resource: 'urn:ringgate:opaque', scope: 'read' } });
  const introspect = (accept) =>
    fetch(`${issuer}/token/introspection`, {
      method: 'POST',
      headers: {
        authorization: basic('basic-client', client('basic-client').client_secret),
        'content-type': 'application/x-www-form-urlencoded',
        accept,
      },
      body: new URLSearchParams({ token: t.access_token }),
    });
  const r = await introspect('application/token-introspection+jwt');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^application\/token-introspection\+jwt/);
  const jwks = await get(`${issuer}/jwks`);
  const { header, payload } = verifyJws(await r.text(), jwks);
  assert.equal(header.alg, 'RS256');
  assert.equal(payload.iss, issuer);
  assert.equal(payload.token_introspection.active, true);
  assert.equal(payload.token_introspection.client_id, 'post-client');
  assert.equal((await (await introspect('application/json')).json()).active, true, 'JSON when asked for JSON');
});

test('issued JWTs are introspected until they expire or are revoked', async () => {
  const t = await goodToken('post-client', { scope: 'read' });
  const introspect = (token, auth = basic('basic-client', client('basic-client').client_secret)) =>
    fetch(`${issuer}/token/introspection`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }),
    });
  const body = await (await introspect(t.access_token)).json();
  assert.equal(body.active, true);
  assert.equal(body.client_id, 'post-client');
  assert.equal(body.scope, 'read');
  assert.equal(body.exp, decodePart(t.access_token.split('.')[1]).exp);
  assert.equal((await introspect(t.access_token, basic('basic-client', 'wrong'))).status, 401);
  const other = await goodToken('basic-client');
  assert.deepEqual(await ctl('/revoke', { client_id: 'post-client' }), { revoked: 1 });
  assert.deepEqual(await (await introspect(t.access_token)).json(), { active: false });
  assert.equal((await (await introspect(other.access_token)).json()).active, true, 'another client is untouched');
  const forged = `${t.access_token.slice(0, -2)}xx`;
  assert.equal((await (await introspect(forged)).json()).active, false, 'a token it never issued');
});

test('introspection requests are logged with their arguments and headers, the client secret redacted', async () => {
  await ctl('/reset');
  const t = await goodToken('post-client');
  const r = await fetch(`${issuer}/token/introspection`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-tenant': 'acme' },
    body: new URLSearchParams({
      token: t.access_token,
      resource: 'urn:x',
      client_id: 'post-client',
      client_secret: client('post-client').client_secret,
    }),
  });
  assert.equal((await r.json()).active, true);
  const log = await get(`${control}/introspections`);
  assert.equal(log.length, 1);
  assert.equal(log[0].params.token, t.access_token);
  assert.equal(log[0].params.resource, 'urn:x');
  assert.equal(log[0].params.client_secret, '<redacted>');
  assert.equal(log[0].headers['x-tenant'], 'acme');
  await ctl('/reset');
  assert.deepEqual(await get(`${control}/introspections`), []);
});

test('load clients', async () => {
  for (let i = 0; i < 3; i += 1) {
    const r = await tokenRequest({ id: `${CONFIG.load.id_prefix}${i}`, secret: `${CONFIG.load.secret_prefix}${i}` });
    assert.equal(r.status, 200);
  }
  const r = await tokenRequest({ id: `${CONFIG.load.id_prefix}3`, secret: `${CONFIG.load.secret_prefix}3` });
  assert.equal(r.status, 401, 'only --extra-clients 3 were made');
});

test('token lifetime control', async () => {
  await ctl('/ttl', { seconds: 5 });
  const body = await goodToken('basic-client');
  assert.equal(body.expires_in, 5);
  const { payload } = verifyJws(body.access_token, await get(`${issuer}/jwks`));
  assert.equal(payload.exp - payload.iat, 5);
  await ctl('/reset');
  assert.equal((await goodToken('basic-client')).expires_in, 300);
});

test('signing algorithm switch', async () => {
  for (const alg of ['PS256', 'ES256', 'EdDSA', 'ES384', 'RS512', 'RS256']) {
    await ctl('/alg', { alg });
    const body = await goodToken('post-client');
    const { header } = verifyJws(body.access_token, await get(`${issuer}/jwks`));
    assert.equal(header.alg, alg);
  }
  const res = await fetch(`${control}/alg`, { method: 'POST', body: '{"alg":"none"}' });
  assert.equal(res.status, 400);
});

test('key rotation', async () => {
  const before1 = await goodToken('basic-client');
  const oldKid = decodePart(before1.access_token.split('.')[0]).kid;
  const rot = await ctl('/rotate');
  assert.notEqual(rot.rotated.kid, oldKid);
  const after1 = await goodToken('basic-client');
  const jwks = await get(`${issuer}/jwks`);
  assert.equal(verifyJws(after1.access_token, jwks).header.kid, rot.rotated.kid);
  verifyJws(before1.access_token, jwks); // old key kept
  const rot2 = await ctl('/rotate', { drop_old: true });
  const jwks2 = await get(`${issuer}/jwks`);
  const kids = jwks2.keys.map((k) => k.kid);
  assert.ok(kids.includes(rot2.rotated.kid));
  assert.ok(!kids.includes(oldKid));
  assert.ok(!kids.includes(rot.rotated.kid));
  assert.ok(jwks2.keys.some((k) => k.alg === 'ES256'), 'other algorithms keep their keys');
  assert.equal(verifyJws((await goodToken('basic-client')).access_token, jwks2).header.kid, rot2.rotated.kid);
});

test('faults: 500, drop, slow, times; counted', async () => {
  const c = client('basic-client');
  const req = () => tokenRequest({ id: c.client_id, secret: c.client_secret });

  await ctl('/fault', { target: 'token', mode: '500' });
  const r500 = await req();
  assert.equal(r500.status, 500);
  assert.equal(r500.body.error, 'server_error');

  await ctl('/fault', { target: 'token', mode: 'drop' });
  await assert.rejects(req());

  await ctl('/fault', { target: 'token', mode: 'slow', delay_ms: 400 });
  const t0 = Date.now();
  assert.equal((await req()).status, 200);
  assert.ok(Date.now() - t0 >= 400);

  await ctl('/fault', { target: 'token', mode: '500', times: 1 });
  assert.equal((await req()).status, 500);
  assert.equal((await req()).status, 200);

  await ctl('/fault', { target: 'token', mode: 'none' });
  const counters = await get(`${control}/counters`);
  assert.equal(counters.token['basic-client'], 5, 'faulted requests are counted');
  assert.equal(counters.token_total, 5);
  assert.deepEqual(counters.token_status['basic-client'], { 200: 2, 500: 2 }, 'a dropped request has no status');

  for (const [target, url] of [['jwks', `${issuer}/jwks`], ['discovery', `${issuer}/.well-known/openid-configuration`]]) {
    await ctl('/fault', { target, mode: '500' });
    assert.equal((await fetch(url)).status, 500);
    await ctl('/fault', { target, mode: 'drop' });
    await assert.rejects(fetch(url));
    await ctl('/fault', { target, mode: 'slow', delay_ms: 300 });
    const t1 = Date.now();
    assert.equal((await fetch(url)).status, 200);
    assert.ok(Date.now() - t1 >= 300);
    await ctl('/fault', { target, mode: 'none' });
    // token endpoint is unaffected by a JWKS / discovery fault
  }
  const after2 = await get(`${control}/counters`);
  assert.equal(after2.jwks, 3);
  assert.equal(after2.discovery, 3);

  await ctl('/fault', { target: 'all', mode: '500' });
  assert.equal((await req()).status, 500);
  assert.equal((await fetch(`${control}/counters`)).status, 200, 'the control API is never faulted');
  await ctl('/reset');
  assert.equal((await req()).status, 200, 'reset clears faults');
  assert.equal((await get(`${control}/counters`)).token_total, 1, 'reset clears counters');
});

test('tenants are independent IdPs', async () => {
  const t = await ctl('/tenants', { extra_clients: 1 });
  assert.notEqual(t.issuer, issuer);
  assert.equal(t.control, `${t.issuer}/_control`);
  await ctl('/fault', { target: 'token', mode: '500' }, t.control);
  const c = client('basic-client');
  assert.equal((await tokenRequest({ id: c.client_id, secret: c.client_secret, base: t.issuer })).status, 500);
  assert.equal((await tokenRequest({ id: c.client_id, secret: c.client_secret })).status, 200);
  await ctl('/fault', { target: 'token', mode: 'none' }, t.control);
  const body = (await tokenRequest({ id: 'load-0', secret: 'load-secret-0', base: t.issuer })).body;
  const { payload } = verifyJws(body.access_token, await get(`${t.issuer}/jwks`));
  assert.equal(payload.iss, t.issuer);
  await ctl('/shutdown', {}, t.control);
  await assert.rejects(fetch(`${t.issuer}/jwks`));
});
