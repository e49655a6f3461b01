// The OpenID provider the federation tests sign in through: panva's oidc-provider (an
// OpenID Certified implementation), on a loopback port, with one confidential client that must
// use PKCE S256, and no interactive pages: an interaction signs in the account the test chose
// and consents to what was asked, so the flow is driven with plain HTTP.
//
// Started by rampart_testkit::oidc::TestIdp. It prints `listening on <port>`, then waits for
// `POST /_test/setup` with the client's redirect URIs (the test knows Rampart's port only after
// this provider's issuer URL went into Rampart's configuration) before it serves OpenID.
//
// Test controls (JSON bodies), never part of a real provider:
//   POST /_test/account  {sub, email?, email_verified?, name?}  who signs in next
//   POST /_test/tamper   {mode}  the next token answers' id_token rewritten: "nonce", "expired",
//                        "other_key" (signed by a key not in the JWKS, same kid), "alg_none",
//                        "aud", "iss", or null for the real one
import http from 'node:http';
import Provider from 'oidc-provider';
import { SignJWT, decodeJwt, exportJWK, generateKeyPair, base64url } from 'jose';

const server = http.createServer();
let handler = null;
let account = { sub: 'idp-user-1', email: 'ada@example.com', email_verified: true, name: 'Ada Lovelace' };
let tamper = null;

const KID = 'rampart-test-key';
const real = await generateKeyPair('RS256', { extractable: true });
const forger = await generateKeyPair('RS256', { extractable: true });
const realJwk = { ...(await exportJWK(real.privateKey)), kid: KID, alg: 'RS256', use: 'sig' };

function readJson(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.on('data', (c) => { data += c; });
    req.on('end', () => { try { resolve(data ? JSON.parse(data) : {}); } catch (e) { reject(e); } });
  });
}

function answer(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function forge(idToken, mode) {
  const claims = decodeJwt(idToken);
  const now = Math.floor(Date.now() / 1000);
  let key = real.privateKey;
  switch (mode) {
    case 'nonce': claims.nonce = 'a-nonce-of-another-flow'; break;
    case 'expired': claims.iat = now - 7200; claims.exp = now - 3600; break;
    case 'aud': claims.aud = 'another-client'; break;
    case 'iss': claims.iss = 'https://evil.example'; break;
    case 'other_key': key = forger.privateKey; break;
    case 'alg_none': {
      const head = base64url.encode(JSON.stringify({ alg: 'none', kid: KID }));
      return `${head}.${base64url.encode(JSON.stringify(claims))}.`;
    }
    default: throw new Error(`unknown tamper mode ${mode}`);
  }
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: KID }).sign(key);
}

function makeProvider(issuer, redirectUris) {
  const provider = new Provider(issuer, {
    clients: [{
      client_id: 'rampart-test',
      client_secret: 'rampart-test-secret-0123456789abcdef',
      redirect_uris: redirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    }],
    jwks: { keys: [realJwk] },
    pkce: { required: () => true, methods: ['S256'] },
    features: { devInteractions: { enabled: false } },
    conformIdTokenClaims: false,
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    ttl: { AccessToken: 600, AuthorizationCode: 60, Grant: 3600, IdToken: 600, Interaction: 600, Session: 3600 },
    cookies: { keys: ['rampart-test-cookie-key-0123456789'] },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, id) {
      const a = account.sub === id ? account : { sub: id };
      return { accountId: id, claims: async () => ({ ...a }) };
    },
  });
  provider.use(async (ctx, next) => {
    if (ctx.path.startsWith('/interaction/')) {
      const details = await provider.interactionDetails(ctx.req, ctx.res);
      let result;
      if (details.prompt.name === 'login') {
        result = { login: { accountId: account.sub } };
      } else {
        const grant = new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
        grant.addOIDCScope(details.params.scope);
        result = { consent: { grantId: await grant.save() } };
      }
      const to = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: true });
      ctx.status = 303;
      ctx.redirect(to);
      return;
    }
    await next();
    if (ctx.path === '/token' && tamper && ctx.body && typeof ctx.body === 'object' && ctx.body.id_token) {
      ctx.body = { ...ctx.body, id_token: await forge(ctx.body.id_token, tamper) };
    }
  });
  return provider;
}

server.on('request', async (req, res) => {
  try {
    if (req.url === '/_test/setup' && req.method === 'POST') {
      const { redirect_uris: uris } = await readJson(req);
      const issuer = `http://127.0.0.1:${server.address().port}`;
      handler = makeProvider(issuer, uris).callback();
      return answer(res, 200, { issuer });
    }
    if (req.url === '/_test/account' && req.method === 'POST') {
      account = await readJson(req);
      return answer(res, 200, account);
    }
    if (req.url === '/_test/tamper' && req.method === 'POST') {
      tamper = (await readJson(req)).mode ?? null;
      return answer(res, 200, { tamper });
    }
    if (!handler) return answer(res, 503, { error: 'not set up' });
    return handler(req, res);
  } catch (e) {
    console.error(e);
    return answer(res, 500, { error: String(e) });
  }
});

server.listen(0, '127.0.0.1', () => {
  console.log(`listening on ${server.address().port}`);
  // The test reads that one line and closes the pipe: anything else goes to stderr.
  console.log = console.error;
  console.info = console.error;
});
process.stdout.on('error', () => {});
// The test's end closes our standard input: stop with it.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
