import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import './styles.css';
import { setUnauthenticatedHandler } from './api.js';
import { abilities, clearToken, decodeToken, getToken, isExpired, setToken } from './auth.js';
import { getLang, joinList, L, label, setLang } from './i18n.js';
import { forgetCaches } from './ref.js';
import { navigate, onLinkClick, usePath } from './router.js';
import { ClusterPage } from './pages/cluster.jsx';
import { Dashboard } from './pages/dashboard.jsx';
import { EnterprisePage } from './pages/enterprise.jsx';
import { OrganizationPage } from './pages/organization.jsx';
import { Reviews } from './pages/reviews.jsx';
import { SignIn } from './pages/signin.jsx';
import { TalentPage } from './pages/talent.jsx';

function currentSession() {
  const token = getToken();
  const claims = decodeToken(token);
  if (!claims || isExpired(claims)) return null;
  return { token, claims, can: abilities(claims) };
}

// The navigation a caller sees follows its roles and organization.
function navItems(can) {
  const items = [{ href: '/', text: L('总览', 'Dashboard') }];
  if (can.government) items.push({ href: '/reviews', text: L('审批', 'Reviews') });
  if (can.enterprise) items.push({ href: '/enterprise', text: L('本企业', 'My enterprise') });
  if (can.promotionOrg) items.push({ href: '/organization', text: L('本机构', 'My organization') });
  if (can.talent) items.push({ href: '/talent', text: L('个人档案', 'My profile') });
  return items;
}

function App() {
  const [session, setSession] = useState(currentSession);
  const [lang, setLangState] = useState(getLang());
  const [notice, setNotice] = useState('');
  const path = usePath();

  useEffect(() => {
    setUnauthenticatedHandler(() => {
      clearToken();
      setSession(null);
      setNotice(L('登录已失效，请重新登录。', 'Your sign-in is no longer valid; please sign in again.'));
    });
  }, []);

  const signIn = (token) => {
    const claims = decodeToken(token);
    setToken(token);
    forgetCaches();
    setNotice('');
    setSession({ token: getToken(), claims, can: abilities(claims) });
    navigate('/');
  };
  const signOut = () => {
    clearToken();
    forgetCaches();
    setSession(null);
    navigate('/');
  };
  const toggleLang = () => {
    setLang(lang === 'zh' ? 'en' : 'zh');
    setLangState(getLang());
  };

  let page;
  if (!session) {
    page = <SignIn onSignIn={signIn} notice={notice} />;
  } else if (path.startsWith('/clusters/')) {
    page = <ClusterPage id={decodeURIComponent(path.slice('/clusters/'.length))} session={session} />;
  } else if (path === '/reviews' && session.can.government) {
    page = <Reviews session={session} />;
  } else if (path === '/enterprise' && session.can.enterprise) {
    page = <EnterprisePage session={session} />;
  } else if (path === '/organization' && session.can.promotionOrg) {
    page = <OrganizationPage session={session} />;
  } else if (path === '/talent' && session.can.talent) {
    page = <TalentPage session={session} />;
  } else {
    page = <Dashboard session={session} />;
  }

  return (
    <div class="shell" onClick={onLinkClick} data-lang={lang}>
      <a class="skip" href="#main">
        {L('跳到正文', 'Skip to content')}
      </a>
      <header class="top">
        <a class="brand" href="/">
          {L('先进制造业集群治理平台', 'Manufacturing Cluster Governance')}
        </a>
        {session && (
          <nav aria-label={L('主导航', 'Main')}>
            {navItems(session.can).map((i) => (
              <a href={i.href} key={i.href} aria-current={path === i.href ? 'page' : undefined}>
                {i.text}
              </a>
            ))}
          </nav>
        )}
        <div class="who">
          {session && (
            <span class="identity" title={session.claims.org}>
              {session.claims.sub} · {session.claims.org} · {joinList(session.claims.roles.map((r) => label('role', r)))}
            </span>
          )}
          <button type="button" class="secondary" onClick={toggleLang} lang={lang === 'zh' ? 'en' : 'zh'}>
            {lang === 'zh' ? 'English' : '中文'}
          </button>
          {session && (
            <button type="button" class="secondary" onClick={signOut}>
              {L('退出', 'Sign out')}
            </button>
          )}
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {page}
      </main>
    </div>
  );
}

render(<App />, document.getElementById('app'));
