// weft's console: the app shell and its pages.

import { render } from 'preact';
import './style.css';
import { ConfigPage } from './pages/config';
import { GraphPage } from './pages/graph';
import { ServiceDetail, ServicesPage, WorkloadDetail, WorkloadsPage } from './pages/lists';
import { TracesPage } from './pages/traces';
import { WizardsPage } from './pages/wizards';
import { useRoute, type Route } from './route';

const nav: [string, string][] = [
  ['graph', 'Traffic Graph'],
  ['services', 'Services'],
  ['workloads', 'Workloads'],
  ['config', 'Istio Config'],
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
  const current = route.parts[0] ?? 'graph';
  return (
    <div class="shell">
      <header class="masthead">
        <span class="logo">weft</span> <span class="muted">console</span>
      </header>
      <nav aria-label="Pages">
        {nav.map(([id, label]) => (
          <a href={'#/' + id} class={current === id ? 'active' : ''} aria-current={current === id ? 'page' : undefined}>
            {label}
          </a>
        ))}
      </nav>
      <main>
        <Page route={route} />
      </main>
    </div>
  );
}

render(<App />, document.getElementById('app')!);
