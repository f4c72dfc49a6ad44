// Local OpenID Certified authorization server (panva/oidc-provider) for
// onbehalf's end-to-end tests. See README.md for the protocol it speaks.
//
//   node server.mjs --port <P> --mode strict|lenient --redirect-uri <URI> [--redirect-uri <URI>...]
//                   [--access-ttl <seconds>]
//
// stdout carries exactly one line, `listening http://127.0.0.1:<P>`, once the
// socket accepts connections (so a test harness can wait on it); everything
// else goes to stderr. `--port 0` picks a free port; the printed line has it.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

// oidc-provider prints its "you SHOULD change this default" notices with
// console.info, i.e. on stdout. stdout is our readiness protocol, so every
// console channel is sent to stderr.
console.log = console.info = console.debug = console.error;

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    mode: { type: 'string', default: 'strict' },
    'redirect-uri': { type: 'string', multiple: true, default: [] },
    'access-ttl': { type: 'string', default: '300' },
  },
});

const port = Number(args.port);
const accessTtl = Number(args['access-ttl']);
const { mode } = args;
const redirectUris = args['redirect-uri'];
if (!Number.isInteger(port) || port < 0 || port > 65535) usage('--port must be 0..65535');
if (!Number.isInteger(accessTtl) || accessTtl <= 0) usage('--access-ttl must be a positive integer');
if (mode !== 'strict' && mode !== 'lenient') usage('--mode must be strict or lenient');
if (redirectUris.length === 0) usage('at least one --redirect-uri is required');

function usage(msg) {
  console.error(`server.mjs: ${msg}
usage: node server.mjs --port <P> --mode strict|lenient --redirect-uri <URI> [--redirect-uri <URI>...] [--access-ttl <s>]`);
  process.exit(2);
}

// A few named accounts; any other login name is accepted too and becomes the
// subject as typed, so tests can mint as many distinct users as they like.
const PEOPLE = {
  ada: 'Ada Lovelace',
  grace: 'Grace Hopper',
  alan: 'Alan Turing',
};

function findAccount(_ctx, id) {
  return {
    accountId: id,
    async claims() {
      return {
        sub: id,
        name: PEOPLE[id] ?? id,
        email: `${id}@example.org`,
        email_verified: true,
      };
    },
  };
}

function buildProvider(issuer) {
  // Fresh signing key per process: nothing on disk, and a client that caches
  // JWKS across restarts is caught out rather than silently passing.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), use: 'sig', alg: 'RS256' };

  const provider = new Provider(issuer, {
    clients: [{
      client_id: 'onbehalf',
      client_secret: 'conformance-secret',
      redirect_uris: redirectUris,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      // Revocation and introspection inherit this method, so they take basic too.
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    // Advertise and accept nothing but basic: client_secret_post must be a
    // 401 invalid_client, not a quietly accepted alternative.
    clientAuthMethods: ['client_secret_basic'],
    findAccount,
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    responseTypes: ['code'], // authorization code flow only: no implicit/hybrid
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    claims: {
      openid: ['sub'],
      profile: ['name'],
      email: ['email', 'email_verified'],
    },
    features: {
      devInteractions: { enabled: false }, // replaced by the form below
      // One client, so "a client may only see/revoke its own tokens" is all the
      // policy needed (set explicitly: the defaults print a notice on every call).
      revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      introspection: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
    },
    // Confidential client or not, the code exchange must carry a S256 verifier.
    pkce: { required: () => true },
    // Every refresh hands out a new refresh token; replaying a consumed one
    // makes oidc-provider revoke the whole grant (built in, see
    // lib/actions/grants/refresh_token.js: `if (refreshToken.consumed)`).
    rotateRefreshToken: true,
    ...(mode === 'lenient' ? {
      // Like providers that ignore OIDC Core §11: a refresh token for every
      // code grant, offline_access or not. offline_access itself is still
      // dropped from the scope unless prompt=consent was sent (the provider's
      // checkScope does that before we get a say), so the token response
      // shows a refresh_token next to a scope without offline_access.
      issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
      // ...and that refresh token is a real one, not tied to the browser
      // session (the default ties tokens without offline_access to it).
      expiresWithSession: async () => false,
    } : {}),
    ttl: {
      // All set explicitly: the defaults print a notice each time they are used.
      AccessToken: accessTtl,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: 14 * 24 * 3600,
      Interaction: 3600,
      Session: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
    },
    interactions: {
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    // Plain http on loopback needs nothing else: `proxy` stays off (no
    // X-Forwarded-* trust), and oidc-provider's cookies are only `secure`
    // when the request is, so they flow over http://127.0.0.1.
  });

  // The refusals the tests provoke on purpose show up here, with the reason
  // oidc-provider keeps out of the HTTP response (error_detail).
  for (const event of ['server_error', 'authorization.error', 'grant.error', 'revocation.error',
    'introspection.error', 'userinfo.error']) {
    provider.on(event, (_ctx, err) => console.error(`[oidc] ${event}: ${err.error ?? err.name}: ${err.error_description ?? err.message}`
      + `${err.error_detail ? ` (${err.error_detail})` : ''}`));
  }
  provider.on('grant.revoked', (_ctx, grantId) => console.error(`[oidc] grant.revoked: ${grantId}`));
  return provider;
}

const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(res, status, uid, details, message) {
  const { params, prompt, session } = details;
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Conformance provider: sign in</title></head>
<body>
<h1>Sign in to the conformance provider</h1>
<p><strong>${esc(params.client_id)}</strong> asks for: <code>${esc(params.scope)}</code> (prompt: ${esc(prompt.name)})</p>
${message ? `<p role="alert">${esc(message)}</p>` : ''}
<form method="post" action="/interaction/${esc(uid)}">
  <label>Login <input name="login" autocomplete="username" value="${esc(session?.accountId ?? params.login_hint ?? '')}"${prompt.name === 'login' ? '' : ' readonly'}></label>
  <button type="submit" name="decision" value="allow">Allow</button>
  <button type="submit" name="decision" value="deny">Deny</button>
</form>
</body></html>`);
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 16384) throw Object.assign(new Error('form too large'), { status: 413 });
  }
  return new URLSearchParams(body);
}

async function interaction(provider, req, res, uid) {
  // Throws SessionNotFound when the _interaction cookie is missing or stale.
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw Object.assign(new Error('interaction cookie is for another uid'), { status: 400 });

  if (req.method === 'GET') return page(res, 200, uid, details);
  if (req.method !== 'POST') throw Object.assign(new Error('method not allowed'), { status: 405 });

  const form = await readForm(req);
  if (form.get('decision') === 'deny') {
    return provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'The user denied access',
    }, { mergeWithLastSubmission: false });
  }
  if (form.get('decision') !== 'allow') return page(res, 400, uid, details, 'decision must be allow or deny');

  const { prompt, params, session, grantId } = details;
  // One form does login and consent at once, so a plain HTTP client needs a
  // single POST. At the consent prompt the login is already known (session).
  const accountId = prompt.name === 'login' ? form.get('login')?.trim() : session.accountId;
  if (!accountId) return page(res, 400, uid, details, 'login is required');

  let grant = grantId ? await provider.Grant.find(grantId) : undefined;
  if (!grant || grant.accountId !== accountId) {
    grant = new provider.Grant({ accountId, clientId: params.client_id });
  }
  // Grant what was requested, as the dev consent does with
  // details.missingOIDCScope. params.scope is already filtered by the
  // provider: offline_access has been removed from it unless the request had
  // prompt=consent, so it is only granted when the spec allows it.
  // (The claims request parameter is off, so scopes are all there is to grant.)
  if (params.scope) grant.addOIDCScope(params.scope);

  const result = { consent: { grantId: await grant.save() } };
  if (prompt.name === 'login') result.login = { accountId };
  return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

const INTERACTION = /^\/interaction\/([A-Za-z0-9_-]+)$/;
let handle; // set once the port (hence the issuer) is known

const server = createServer((req, res) => handle(req, res));
server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = buildProvider(issuer);
  const oidc = provider.callback();

  handle = async (req, res) => {
    const uid = INTERACTION.exec(new URL(req.url, issuer).pathname)?.[1];
    if (!uid) return oidc(req, res);
    try {
      await interaction(provider, req, res, uid);
    } catch (err) {
      console.error(`[interaction] ${req.method} ${req.url}: ${err.name}: ${err.error_detail ?? err.message}`);
      if (res.headersSent) return res.end();
      res.writeHead(err.status ?? err.statusCode ?? 500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`${err.name}: ${err.error_detail ?? err.message}\n`);
    }
  };

  console.error(`[server] mode=${mode} access_ttl=${accessTtl}s redirect_uris=${redirectUris.join(' ')}`);
  process.stdout.write(`listening ${issuer}\n`);
});

// Killed is the normal way to stop; exit 0 so harnesses do not log a failure.
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
