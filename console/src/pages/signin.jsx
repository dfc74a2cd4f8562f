// Sign-in. Development: paste a bearer token. An identity provider (OIDC) adds its button here
// and ends in the same onSignIn(token).
import { useState } from 'preact/hooks';
import { decodeToken, isExpired } from '../auth.js';
import { joinList, L, label } from '../i18n.js';
import { Field } from '../ui.jsx';

export function SignIn({ onSignIn, notice }) {
  const [token, setTokenText] = useState('');
  const [error, setError] = useState('');
  const claims = decodeToken(token.trim().replace(/^Bearer\s+/i, ''));
  const submit = (e) => {
    e.preventDefault();
    const t = token.trim().replace(/^Bearer\s+/i, '');
    const c = decodeToken(t);
    if (!c) return setError(L('这不是有效的令牌（JWT）。', 'This is not a valid token (JWT).'));
    if (isExpired(c)) return setError(L('令牌已过期。', 'The token has expired.'));
    onSignIn(t);
  };
  return (
    <div class="signin card">
      <h1>{L('登录', 'Sign in')}</h1>
      {notice && (
        <p class="error" role="alert">
          {notice}
        </p>
      )}
      <form onSubmit={submit} noValidate>
        <Field
          label={L('访问令牌（开发用）', 'Access token (development)')}
          name="token"
          type="textarea"
          rows={5}
          value={token}
          error={error}
          onValue={(v) => {
            setTokenText(v);
            setError('');
          }}
          hint={L(
            '粘贴 clustergov-token 签发的 Bearer 令牌；令牌只保存在本标签页中。',
            'Paste a bearer token minted by clustergov-token; it is kept in this tab only.',
          )}
          autoComplete="off"
          spellcheck={false}
        />
        {claims && (
          <p class="preview">
            {claims.sub} · {claims.org} · {joinList(claims.roles.map((r) => label('role', r)))}
          </p>
        )}
        <div class="actions">
          <button type="submit">{L('登录', 'Sign in')}</button>
          <button type="button" class="secondary" disabled title={L('待接入统一身份认证（OIDC）', 'Awaiting the identity provider (OIDC)')}>
            {L('统一身份认证登录', 'Sign in with the identity provider')}
          </button>
        </div>
      </form>
    </div>
  );
}
