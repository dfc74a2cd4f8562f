// The caller's session. Development sign-in: a pasted bearer token (minted by
// build/common/clustergov-token). It is kept in sessionStorage, so it lives as long as the tab.
//
// An identity provider (OIDC authorization code flow with PKCE) plugs in here: a provider object
// with signIn() that ends in setToken(accessToken). The console only ever needs the token; the
// payload is decoded for display and navigation alone — every service verifies it.

const KEY = 'clustergov.token';

export function getToken() {
  return sessionStorage.getItem(KEY) || '';
}

export function setToken(token) {
  sessionStorage.setItem(KEY, token.trim().replace(/^Bearer\s+/i, ''));
}

export function clearToken() {
  sessionStorage.removeItem(KEY);
}

function base64UrlDecode(part) {
  const b64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

// The claims the console uses: subject, organization, roles, expiry (seconds). Null when the
// text is not a JWT with those claims.
export function decodeToken(token) {
  const parts = (token || '').split('.');
  if (parts.length !== 3) return null;
  try {
    const p = JSON.parse(base64UrlDecode(parts[1]));
    if (typeof p.sub !== 'string' || typeof p.org !== 'string' || !Array.isArray(p.roles)) return null;
    return { sub: p.sub, org: p.org, roles: p.roles.map(String), exp: Number(p.exp) || 0 };
  } catch {
    return null;
  }
}

export function isExpired(claims, nowSeconds = Date.now() / 1000) {
  return claims.exp > 0 && claims.exp <= nowSeconds;
}

// What the caller may do, from its roles and organization (the server decides in the end).
export function abilities(claims) {
  const has = (r) => claims.roles.includes(r);
  const org = claims.org;
  return {
    government: has('government'),
    department: has('government') && org.startsWith('departments/') ? org.slice('departments/'.length) : '',
    enterprise: has('enterprise') && org.startsWith('enterprises/') ? org : '',
    promotionOrg: has('promotion_org') && org.startsWith('promotionOrgs/') ? org : '',
    talent: has('talent') && org.startsWith('talents/') ? org : '',
    readsAll: has('government') || has('auditor') || has('admin'),
  };
}
