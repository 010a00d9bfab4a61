// weft's console: the app shell and its pages.

import { render } from 'preact';
import './style.css';
import { logout, useAuth } from './auth';
import { ConfigPage } from './pages/config';
import { HistoryPage } from './pages/history';
import { GraphPage } from './pages/graph';
import { ServiceDetail, ServicesPage, WorkloadDetail, WorkloadsPage } from './pages/lists';
import { TracesPage } from './pages/traces';
import { LoginPage } from './pages/login';
import { WizardsPage } from './pages/wizards';
import { useRoute, type Route } from './route';

const nav: [string, string][] = [
  ['graph', 'Traffic Graph'],
  ['services', 'Services'],
  ['workloads', 'Workloads'],
  ['config', 'Istio Config'],
  ['history', 'Config History'],
  ['traces', 'Traces'],
  ['wizards', 'Wizards'],
];

function Page({ route }: { route: Route }) {
  const [page, a] = route.parts;
  switch (page) {
    case 'services':
      return a ? <ServiceDetail route={route} /> : <ServicesPage />;
    case 'workloads':
      return a ? <WorkloadDetail route={route} /> : <WorkloadsPage />;
    case 'config':
      return <ConfigPage route={route} />;
    case 'history':
      return <HistoryPage route={route} />;
    case 'traces':
      return <TracesPage route={route} />;
    case 'wizards':
      return <WizardsPage route={route} />;
    default:
      return <GraphPage route={route} />;
  }
}

function App() {
  const route = useRoute();
  const auth = useAuth();
  const current = route.parts[0] ?? 'graph';
  // The wizards are for users who may write; a read-only user does not see them.
  const pages = nav.filter(([id]) => id !== 'wizards' || auth?.admin || auth?.write);
  return (
    <div class="shell">
      <header class="masthead">
        <span class="logo">weft</span> <span class="muted">console</span>
        {auth?.authenticated && (
          <span class="whoami">
            {auth.user}
            {!auth.admin && !auth.write && <span class="muted"> (read-only)</span>}
            {!auth.anonymous && (
              <button class="link" onClick={() => logout()}>
                Log out
              </button>
            )}
          </span>
        )}
      </header>
      {auth && !auth.authenticated ? (
        <main class="login-main">
          <LoginPage auth={auth} />
        </main>
      ) : (
        <>
          <nav aria-label="Pages">
            {pages.map(([id, label]) => (
              <a href={'#/' + id} class={current === id ? 'active' : ''} aria-current={current === id ? 'page' : undefined}>
                {label}
              </a>
            ))}
          </nav>
          <main>{auth ? <Page route={route} /> : <div class="muted">loading…</div>}</main>
        </>
      )}
    </div>
  );
}

render(<App />, document.getElementById('app')!);
