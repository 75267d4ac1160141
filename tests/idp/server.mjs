// The OpenID Provider that ringgate's integration tests run against.
//
// A real oidc-provider (certified OpenID Provider library) on 127.0.0.1, set up
// for the client-credentials grant with JWT access tokens, plus a small JSON
// control API under /_control on the same port for fault injection, key
// rotation, token lifetime, signing algorithm and request counters.
//
// Usage: node server.mjs [--port N] [--extra-clients N] [--ttl S] [--alg ALG]
//                        [--tls-cert FILE --tls-key FILE]
//   (or env IDP_PORT, IDP_EXTRA_CLIENTS, IDP_TTL, IDP_ALG). Port 0 = any free
//   port. With --tls-cert/--tls-key (PEM) the provider, control API included,
//   is served over https and the issuer is https://127.0.0.1:<port>. The first
//   stdout line is
//     IDP_READY <issuer> <control-url>
// See README.md in this folder.

import * as crypto from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import * as querystring from 'node:querystring';
import { readFileSync } from 'node:fs';

import { Provider } from 'oidc-provider';

const CONFIG = JSON.parse(readFileSync(new URL('./clients.json', import.meta.url), 'utf8'));

// Every algorithm the proxy must verify (SPEC §3). Keys for the first four
// exist from the start; the others are made on the first POST /alg naming them.
const ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'EdDSA'];
const INITIAL_ALGS = ['RS256', 'PS256', 'ES256', 'EdDSA'];
const FAULT_TARGETS = ['token', 'jwks', 'discovery', 'introspection'];
// `inactive` answers an introspection request `{"active":false}` (RFC 7662 §2.2).
// `bad_token` answers a token request 200 with an access token no IdP may issue (RFC
// 6749 A.12: printable ASCII only): CR LF and a header line inside, as a broken or
// hostile IdP might, to show the proxy never writes it into a header. `bad_issuer`
// does the same to the discovery document's `issuer` (a URL, RFC 8414 §2).
const FAULT_MODES = ['none', 'slow', '500', 'drop', 'inactive', 'bad_token', 'bad_issuer'];
const CONTROL_PREFIX = '/_control';
const LOG_LIMIT = 500;
// How many issued JWTs the IdP remembers for introspection.
const ISSUED_LIMIT = 20000;

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 1) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m) throw new Error(`unknown argument ${argv[i]}`);
    out[m[1]] = m[2] !== undefined ? m[2] : argv[++i];
  }
  return out;
}

function intOption(value, fallback, name) {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${value}`);
  return n;
}

// ---------------------------------------------------------------- keys

let kidSeq = 0;
const runTag = crypto.randomBytes(3).toString('hex');

function generateKey(alg) {
  let type;
  let options;
  if (alg.startsWith('RS') || alg.startsWith('PS')) {
    type = 'rsa';
    options = { modulusLength: 2048 };
  } else if (alg === 'ES256') {
    type = 'ec';
    options = { namedCurve: 'P-256' };
  } else if (alg === 'ES384') {
    type = 'ec';
    options = { namedCurve: 'P-384' };
  } else if (alg === 'EdDSA') {
    type = 'ed25519';
    options = {};
  } else {
    throw new Error(`unsupported alg ${alg}`);
  }
  const { privateKey } = crypto.generateKeyPairSync(type, options);
  kidSeq += 1;
  return {
    ...privateKey.export({ format: 'jwk' }),
    kid: `${alg.toLowerCase()}-${runTag}-${kidSeq}`,
    alg,
    use: 'sig',
  };
}

// ---------------------------------------------------------------- clients

// A resource whose access tokens are opaque (not JWTs): a client asks for it with the
// token request's `resource` parameter.
const OPAQUE_RESOURCE = 'urn:ringgate:opaque';

// Extra access-token claims by client id (`token_claims` in clients.json).
const TOKEN_CLAIMS = new Map(CONFIG.clients.filter((c) => c.token_claims).map((c) => [c.client_id, c.token_claims]));

function clientList(extraClients) {
  const clients = CONFIG.clients.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    token_endpoint_auth_method: c.token_endpoint_auth_method,
    ...(c.token_endpoint_auth_signing_alg
      ? { token_endpoint_auth_signing_alg: c.token_endpoint_auth_signing_alg } : {}),
    ...(c.introspection_signed_response_alg
      ? { introspection_signed_response_alg: c.introspection_signed_response_alg } : {}),
    ...(c.tls_client_certificate_bound_access_tokens
      ? { tls_client_certificate_bound_access_tokens: true } : {}),
    grant_types: c.grant_types || ['client_credentials'],
    response_types: [],
    redirect_uris: [],
  }));
  const { load } = CONFIG;
  for (let i = 0; i < extraClients; i += 1) {
    clients.push({
      client_id: `${load.id_prefix}${i}`,
      client_secret: `${load.secret_prefix}${i}`,
      token_endpoint_auth_method: load.token_endpoint_auth_method,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    });
  }
  return clients;
}

// ---------------------------------------------------------------- storage

// oidc-provider keeps little state for this flow (client_secret_jwt `jti`
// replay records, introspection look-ups). A plain Map shared by every
// Provider build keeps it across key rotations; entries expire with their TTL.
const STORE = new Map();

class MemoryAdapter {
  constructor(name) {
    this.name = name;
  }

  key(id) {
    return `${this.name}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : undefined;
    STORE.set(this.key(id), { payload, expiresAt });
    if (payload.grantId) {
      const gk = `grant:${payload.grantId}`;
      const list = STORE.get(gk) || { payload: [], expiresAt };
      list.payload.push(this.key(id));
      STORE.set(gk, list);
    }
  }

  async find(id) {
    const entry = STORE.get(this.key(id));
    if (!entry) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt < Date.now()) {
      STORE.delete(this.key(id));
      return undefined;
    }
    return entry.payload;
  }

  async findByUserCode() {
    return undefined;
  }

  async findByUid() {
    return undefined;
  }

  async consume(id) {
    const entry = STORE.get(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    STORE.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    const gk = `grant:${grantId}`;
    for (const k of STORE.get(gk)?.payload || []) STORE.delete(k);
    STORE.delete(gk);
  }
}

setInterval(() => {
  const now = Date.now();
  for (const [k, v] of STORE) if (v.expiresAt !== undefined && v.expiresAt < now) STORE.delete(k);
}, 60000).unref();

// ---------------------------------------------------------------- request helpers

function formDecode(s) {
  try {
    return decodeURIComponent(s.replace(/\+/g, '%20'));
  } catch {
    return s;
  }
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > 1024 * 1024) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function b64urlJson(part) {
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

// Who is asking and how they authenticated, read from the raw request the way
// oidc-provider reads it (Basic values are form-decoded, RFC 6749 §2.3.1).
// The registered client a request to the introspection endpoint authenticates as, by
// client_secret_basic (id and secret form-encoded, RFC 6749 §2.3.1) or
// client_secret_post; undefined when neither checks out.
function secretClient(req, params, registered) {
  let id;
  let secret;
  const [scheme, value] = (req.headers.authorization || '').split(' ');
  if (scheme && scheme.toLowerCase() === 'basic' && value) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i === -1) return undefined;
    id = formDecode(decoded.slice(0, i));
    secret = formDecode(decoded.slice(i + 1));
  } else {
    id = params.get('client_id');
    secret = params.get('client_secret');
  }
  const client = id === null || id === undefined ? undefined : registered.get(id);
  return client && client.client_secret === secret ? client : undefined;
}

function describeTokenRequest(req, body) {
  let params = {};
  const type = (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
  if (type === 'application/x-www-form-urlencoded') {
    params = { ...querystring.parse(body.toString('utf8')) };
  } else if (type === 'application/json') {
    try {
      params = JSON.parse(body.toString('utf8')) || {};
    } catch {
      params = {};
    }
  }
  let clientId;
  let method = 'none';
  const authz = req.headers.authorization;
  if (authz !== undefined) {
    const [scheme, value] = authz.split(' ');
    if (scheme && scheme.toLowerCase() === 'basic' && value) {
      method = 'client_secret_basic';
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      clientId = formDecode(i === -1 ? decoded : decoded.slice(0, i));
    } else {
      method = 'other_authorization_header';
    }
  } else if (params.client_secret !== undefined) {
    method = 'client_secret_post';
  } else if (params.client_assertion !== undefined) {
    const parts = String(params.client_assertion).split('.');
    const header = b64urlJson(parts[0] || '') || {};
    const payload = b64urlJson(parts[1] || '') || {};
    method = String(header.alg || '').startsWith('HS') ? 'client_secret_jwt' : 'private_key_jwt';
    clientId = payload.sub || payload.iss;
  }
  if (clientId === undefined && typeof params.client_id === 'string') clientId = params.client_id;
  const shown = {};
  for (const [k, v] of Object.entries(params)) {
    shown[k] = ['client_secret', 'client_assertion'].includes(k) ? '<redacted>' : v;
  }
  const headers = { ...req.headers };
  if (headers.authorization !== undefined) headers.authorization = '<redacted>';
  return {
    client_id: clientId === undefined ? '' : String(clientId),
    auth_method: method,
    grant_type: params.grant_type,
    scope: params.scope,
    params: shown,
    headers,
  };
}

function sendJson(res, status, obj, extraHeaders = {}) {
  const body = JSON.stringify(obj);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...extraHeaders,
  });
  res.end(body);
}

const sleep = (ms) => new Promise((r) => { setTimeout(r, ms); });

function bump(map, key, by = 1) {
  map[key] = (map[key] || 0) + by;
}

// ---------------------------------------------------------------- one IdP

const instances = new Set();

function freshCounters() {
  return {
    token_total: 0,
    token: {},
    token_by_method: {},
    token_status: {},
    jwks: 0,
    discovery: 0,
    introspection: 0,
    other: 0,
  };
}

function noFaults() {
  return Object.fromEntries(FAULT_TARGETS.map((t) => [t, { mode: 'none' }]));
}

class Idp {
  constructor({ extraClients, ttl, alg, tls }) {
    this.defaults = { ttl, alg };
    this.scheme = tls ? 'https' : 'http';
    this.extraClients = extraClients;
    this.clients = clientList(extraClients);
    this.registered = new Map(this.clients.map((c) => [c.client_id, c]));
    this.ttl = ttl;
    this.alg = alg;
    this.strict = true;
    this.faults = noFaults();
    this.counters = freshCounters();
    this.log = [];
    // The introspection requests that got past fault injection, as the log above.
    this.introspectionLog = [];
    // The JWT access tokens this IdP issued, so its introspection endpoint can answer
    // for them (oidc-provider keeps no record of structured tokens), and revoke them.
    this.issued = new Map();
    this.keys = {}; // alg -> [newest private JWK, ...older]
    for (const a of new Set([...INITIAL_ALGS, alg])) this.keys[a] = [generateKey(a)];
    const handler = (req, res) => {
      this.handle(req, res).catch((err) => {
        process.stderr.write(`idp: ${err.stack || err}\n`);
        if (!res.headersSent) sendJson(res, 500, { error: 'server_error', error_description: String(err.message) });
        else res.destroy();
      });
    };
    this.server = tls ? https.createServer(tls, handler) : http.createServer(handler);
    this.server.keepAliveTimeout = 5000;
  }

  async listen(port) {
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', resolve);
    });
    this.port = this.server.address().port;
    this.issuer = `${this.scheme}://127.0.0.1:${this.port}`;
    this.control = `${this.issuer}${CONTROL_PREFIX}`;
    this.rebuild();
    instances.add(this);
    return this;
  }

  async close() {
    instances.delete(this);
    await new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  signingKid() {
    return this.keys[this.alg][0].kid;
  }

  // oidc-provider reads its keys once, at construction: a rotation builds a
  // new Provider with the new key set (clients are static, tokens are JWTs,
  // so nothing else needs to carry over).
  rebuild() {
    const idp = this;
    const jwks = { keys: Object.values(this.keys).flat() };
    const provider = new Provider(this.issuer, {
      adapter: MemoryAdapter,
      clients: this.clients,
      jwks,
      clientAuthMethods: [
        'client_secret_basic',
        'client_secret_post',
        'client_secret_jwt',
        'private_key_jwt',
      ],
      enabledJWA: {
        idTokenSigningAlgValues: ALGS,
        clientAuthSigningAlgValues: ['HS256', 'HS384', 'HS512', ...ALGS],
      },
      scopes: ['openid', 'offline_access', ...CONFIG.resource_scopes.filter((s) => s !== 'openid')],
      cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        introspection: { enabled: true },
        // Signed introspection answers (Accept: application/token-introspection+jwt)
        // for a client registered with introspection_signed_response_alg.
        jwtIntrospection: { enabled: true },
        // DPoP (RFC 9449): a token request with a `DPoP` proof gets a token bound to
        // the proof's key (`cnf.jkt`, token_type DPoP); without one, a bearer token.
        dPoP: { enabled: true },
        // Certificate-bound tokens (RFC 8705 §3) for clients registered with
        // tls_client_certificate_bound_access_tokens: `cnf.x5t#S256` is the thumbprint
        // of the certificate in the `x-client-certificate` header (URL-encoded PEM),
        // where a TLS terminator in front of the IdP puts the client's certificate.
        mTLS: {
          enabled: true,
          certificateBoundAccessTokens: true,
          getCertificate: (ctx) => {
            const sent = ctx.get('x-client-certificate');
            if (!sent) return undefined;
            try {
              return decodeURIComponent(sent);
            } catch {
              return undefined;
            }
          },
        },
        resourceIndicators: {
          enabled: true,
          // Client-credentials requests without a `resource` parameter get the
          // test API as audience, which makes the access token a JWT.
          defaultResource: async () => CONFIG.resource,
          useGrantedResource: async () => true,
          // Any absolute URI is accepted as a resource: `aud` is that URI, so a
          // test can choose the audience with token_post_args `resource=...`.
          // The resource OPAQUE_RESOURCE gets opaque access tokens instead.
          getResourceServerInfo: async (_ctx, resourceIndicator) => ({
            scope: CONFIG.resource_scopes.join(' '),
            audience: resourceIndicator,
            accessTokenTTL: idp.ttl,
            ...(resourceIndicator === OPAQUE_RESOURCE
              ? { accessTokenFormat: 'opaque' }
              : { accessTokenFormat: 'jwt', jwt: { sign: { alg: idp.alg, kid: idp.signingKid() } } }),
          }),
        },
      },
      // Claims a client's entry in clients.json asks for, added to its access tokens.
      extraTokenClaims: async (_ctx, token) => TOKEN_CLAIMS.get(token.clientId),
      ttl: {
        ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL || idp.ttl,
        AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL || idp.ttl,
      },
      renderError: async (ctx, out) => {
        ctx.type = 'json';
        ctx.body = out;
      },
    });
    this.provider = provider;
    this.callback = provider.callback();
  }

  classify(pathname) {
    if (pathname === '/.well-known/openid-configuration') return 'discovery';
    if (pathname === '/jwks') return 'jwks';
    if (pathname === '/token') return 'token';
    if (pathname === '/token/introspection') return 'introspection';
    return 'other';
  }

  // Returns true when the fault answered (or dropped) the request.
  async applyFault(target, req, res) {
    const fault = this.faults[target];
    if (!fault || fault.mode === 'none') return false;
    if (fault.times !== undefined) {
      fault.times -= 1;
      if (fault.times <= 0) this.faults[target] = { mode: 'none' };
    }
    switch (fault.mode) {
      case 'slow':
        await sleep(fault.delay_ms);
        return false;
      case '500':
        sendJson(res, 500, { error: 'server_error', error_description: `injected fault (${target})` });
        return true;
      case 'drop':
        req.socket.destroy();
        return true;
      case 'inactive':
        if (target !== 'introspection') return false;
        sendJson(res, 200, { active: false });
        return true;
      case 'bad_token':
        if (target !== 'token') return false;
        sendJson(res, 200, { access_token: 'opaque\r\nX-Injected: 1', token_type: 'Bearer', expires_in: 60 });
        return true;
      case 'bad_issuer':
        if (target !== 'discovery') return false;
        sendJson(res, 200, {
          issuer: `${this.issuer}\r\nX-Injected: 1`,
          token_endpoint: `${this.issuer}/token`,
          jwks_uri: `${this.issuer}/jwks`,
        });
        return true;
      default:
        return false;
    }
  }

  async handle(req, res) {
    const url = new URL(req.url, this.issuer);
    if (url.pathname === CONTROL_PREFIX || url.pathname.startsWith(`${CONTROL_PREFIX}/`)) {
      await this.handleControl(req, res, url.pathname.slice(CONTROL_PREFIX.length) || '/');
      return;
    }
    const target = this.classify(url.pathname);
    if (target === 'discovery') this.counters.discovery += 1;
    else if (target === 'jwks') this.counters.jwks += 1;
    else if (target === 'introspection') this.counters.introspection += 1;
    else if (target === 'other') this.counters.other += 1;

    if (target === 'token' && req.method === 'POST') {
      await this.handleToken(req, res);
      return;
    }
    if (await this.applyFault(target, req, res)) return;
    if (target === 'introspection' && req.method === 'POST') {
      await this.handleIntrospection(req, res);
      return;
    }
    this.callback(req, res);
  }

  // A JWT access token this IdP issued is introspected here, as Keycloak and Okta
  // introspect theirs: active until it expires or is revoked (POST /_control/revoke),
  // with its claims. Anything else goes to oidc-provider.
  async handleIntrospection(req, res) {
    const body = await readBody(req);
    this.introspectionLog.push({ at: new Date().toISOString(), ...describeTokenRequest(req, body) });
    if (this.introspectionLog.length > LOG_LIMIT) this.introspectionLog.shift();
    const params = new URLSearchParams(body.toString('utf8'));
    const entry = this.issued.get(params.get('token') || '');
    if (entry !== undefined) {
      if (secretClient(req, params, this.registered) === undefined) {
        sendJson(res, 401, { error: 'invalid_client', error_description: 'client authentication failed' });
        return;
      }
      const active = !entry.revoked && Number(entry.payload.exp) > Date.now() / 1000;
      sendJson(res, 200, active ? { active: true, token_type: 'Bearer', ...entry.payload } : { active: false });
      return;
    }
    req.body = body;
    this.callback(req, res);
  }

  // Notes a JWT access token in a token endpoint answer (the JSON body `raw`).
  noteIssued(raw) {
    let answer;
    try {
      answer = JSON.parse(raw.toString('utf8'));
    } catch {
      return;
    }
    const token = answer && answer.access_token;
    if (typeof token !== 'string' || token.split('.').length !== 3) return;
    const payload = b64urlJson(token.split('.')[1]);
    if (!payload) return;
    this.issued.set(token, { payload, revoked: false });
    if (this.issued.size > ISSUED_LIMIT) this.issued.delete(this.issued.keys().next().value);
  }

  async handleToken(req, res) {
    const body = await readBody(req);
    const info = describeTokenRequest(req, body);
    const entry = { at: new Date().toISOString(), ...info, fault: this.faults.token.mode, status: null };
    this.counters.token_total += 1;
    bump(this.counters.token, info.client_id);
    this.counters.token_by_method[info.client_id] ||= {};
    bump(this.counters.token_by_method[info.client_id], info.auth_method);
    this.log.push(entry);
    if (this.log.length > LOG_LIMIT) this.log.splice(0, this.log.length - LOG_LIMIT);
    res.on('finish', () => {
      entry.status = res.statusCode;
      this.counters.token_status[info.client_id] ||= {};
      bump(this.counters.token_status[info.client_id], String(res.statusCode));
    });
    res.on('close', () => {
      if (entry.status === null) entry.status = 'dropped';
    });

    if (await this.applyFault('token', req, res)) return;

    // oidc-provider accepts client_secret_basic and client_secret_post
    // interchangeably for a client registered with either. The tests want to
    // know which one the proxy used, so this IdP insists on the registered one
    // unless strict mode is turned off.
    const client = this.registered.get(info.client_id);
    if (this.strict && client
      && ['client_secret_basic', 'client_secret_post'].includes(client.token_endpoint_auth_method)
      && ['client_secret_basic', 'client_secret_post'].includes(info.auth_method)
      && client.token_endpoint_auth_method !== info.auth_method) {
      sendJson(res, 401, {
        error: 'invalid_client',
        error_description: `client is registered for ${client.token_endpoint_auth_method}, the request used ${info.auth_method}`,
      });
      return;
    }

    // oidc-provider reads req.body when the stream was already consumed.
    req.body = body;
    const chunks = [];
    const end = res.end.bind(res);
    const write = res.write.bind(res);
    res.write = (chunk, ...rest) => {
      if (chunk) chunks.push(Buffer.from(chunk));
      return write(chunk, ...rest);
    };
    res.end = (chunk, ...rest) => {
      if (chunk && typeof chunk !== 'function') chunks.push(Buffer.from(chunk));
      if (res.statusCode === 200) this.noteIssued(Buffer.concat(chunks));
      return end(chunk, ...rest);
    };
    this.callback(req, res);
  }

  state() {
    return {
      issuer: this.issuer,
      control: this.control,
      alg: this.alg,
      kid: this.signingKid(),
      ttl: this.ttl,
      strict: this.strict,
      faults: this.faults,
      resource: CONFIG.resource,
      extra_clients: this.extraClients,
      keys: Object.fromEntries(Object.entries(this.keys).map(([a, ks]) => [a, ks.map((k) => k.kid)])),
    };
  }

  reset() {
    this.counters = freshCounters();
    this.log = [];
    this.introspectionLog = [];
    this.issued.clear();
    this.faults = noFaults();
    this.ttl = this.defaults.ttl;
    this.strict = true;
    if (this.alg !== this.defaults.alg) {
      this.alg = this.defaults.alg;
    }
  }

  async handleControl(req, res, path) {
    let body = {};
    if (req.method === 'POST') {
      const raw = (await readBody(req)).toString('utf8').trim();
      if (raw) {
        try {
          body = JSON.parse(raw);
        } catch {
          sendJson(res, 400, { error: 'body must be JSON' });
          return;
        }
      }
      if (body === null || typeof body !== 'object' || Array.isArray(body)) {
        sendJson(res, 400, { error: 'body must be a JSON object' });
        return;
      }
    }
    const route = `${req.method} ${path}`;
    const bad = (msg) => sendJson(res, 400, { error: msg });
    switch (route) {
      case 'GET /':
      case 'GET /state':
        sendJson(res, 200, this.state());
        return;
      case 'GET /counters':
        sendJson(res, 200, this.counters);
        return;
      case 'GET /requests': {
        const url = new URL(req.url, this.issuer);
        const clientId = url.searchParams.get('client_id');
        const list = clientId === null ? this.log : this.log.filter((e) => e.client_id === clientId);
        sendJson(res, 200, list);
        return;
      }
      case 'GET /introspections':
        sendJson(res, 200, this.introspectionLog);
        return;
      case 'POST /reset':
        if (body.counters_only) {
          this.counters = freshCounters();
          this.log = [];
          this.introspectionLog = [];
        } else {
          this.reset();
        }
        sendJson(res, 200, this.state());
        return;
      case 'POST /revoke': {
        // Revokes the issued JWTs of `client_id`, or the one `token`.
        if (typeof body.client_id !== 'string' && typeof body.token !== 'string') {
          return bad('revoke needs client_id or token');
        }
        let revoked = 0;
        for (const [token, entry] of this.issued) {
          if (token === body.token || entry.payload.client_id === body.client_id) {
            entry.revoked = true;
            revoked += 1;
          }
        }
        sendJson(res, 200, { revoked });
        return;
      }
      case 'POST /fault': {
        const targets = body.target === 'all' ? FAULT_TARGETS : [body.target];
        if (!targets.every((t) => FAULT_TARGETS.includes(t))) return bad(`target must be one of ${FAULT_TARGETS.join(', ')}, all`);
        const mode = body.mode === undefined ? 'none' : String(body.mode);
        if (!FAULT_MODES.includes(mode)) return bad(`mode must be one of ${FAULT_MODES.join(', ')}`);
        const fault = { mode };
        if (mode === 'slow') fault.delay_ms = intOption(body.delay_ms, 2000, 'delay_ms');
        if (body.times !== undefined && mode !== 'none') fault.times = intOption(body.times, 1, 'times');
        for (const t of targets) this.faults[t] = { ...fault };
        sendJson(res, 200, this.state());
        return;
      }
      case 'POST /rotate': {
        const alg = body.alg === undefined ? this.alg : String(body.alg);
        if (!ALGS.includes(alg)) return bad(`alg must be one of ${ALGS.join(', ')}`);
        const key = generateKey(alg);
        this.keys[alg] = body.drop_old ? [key] : [key, ...(this.keys[alg] || [])];
        this.rebuild();
        sendJson(res, 200, { ...this.state(), rotated: { alg, kid: key.kid } });
        return;
      }
      case 'POST /ttl': {
        const seconds = Number(body.seconds);
        if (!Number.isInteger(seconds) || seconds < 1) return bad('seconds must be a positive integer');
        this.ttl = seconds;
        sendJson(res, 200, this.state());
        return;
      }
      case 'POST /alg': {
        const alg = String(body.alg);
        if (!ALGS.includes(alg)) return bad(`alg must be one of ${ALGS.join(', ')}`);
        if (!this.keys[alg]) {
          this.keys[alg] = [generateKey(alg)];
          this.rebuild();
        }
        this.alg = alg;
        sendJson(res, 200, this.state());
        return;
      }
      case 'POST /strict':
        this.strict = body.enabled !== false;
        sendJson(res, 200, this.state());
        return;
      case 'POST /tenants': {
        const tenant = new Idp({
          extraClients: intOption(body.extra_clients, 0, 'extra_clients'),
          ttl: intOption(body.ttl, this.defaults.ttl, 'ttl'),
          alg: body.alg === undefined ? this.defaults.alg : String(body.alg),
        });
        await tenant.listen(0);
        sendJson(res, 200, tenant.state());
        return;
      }
      case 'POST /shutdown':
        sendJson(res, 200, { ok: true }, { connection: 'close' });
        res.on('finish', () => {
          // eslint-disable-next-line no-use-before-define
          if (this === main) shutdown(0);
          else this.close();
        });
        return;
      default:
        sendJson(res, 404, { error: `no control route ${route}` });
    }
  }
}

// ---------------------------------------------------------------- main

async function shutdown(code) {
  await Promise.all([...instances].map((i) => i.close()));
  process.exit(code);
}

const args = parseArgs(process.argv.slice(2));
const port = intOption(args.port ?? process.env.IDP_PORT, 0, 'port');
const extraClients = intOption(args['extra-clients'] ?? process.env.IDP_EXTRA_CLIENTS, 200, 'extra clients');
const ttl = intOption(args.ttl ?? process.env.IDP_TTL, 300, 'ttl');
const alg = args.alg ?? process.env.IDP_ALG ?? 'RS256';
if (!ALGS.includes(alg)) throw new Error(`alg must be one of ${ALGS.join(', ')}`);

if (Boolean(args['tls-cert']) !== Boolean(args['tls-key'])) throw new Error('--tls-cert and --tls-key go together');
const tls = args['tls-cert'] ? { cert: readFileSync(args['tls-cert']), key: readFileSync(args['tls-key']) } : null;
const main = new Idp({ extraClients, ttl, alg, tls });
await main.listen(port);
process.stdout.write(`IDP_READY ${main.issuer} ${main.control}\n`);

process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
