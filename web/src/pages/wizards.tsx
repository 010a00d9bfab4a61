import type { Route } from '../route';

export function WizardsPage(_: { route: Route }) {
  return <div class="page"><h1>Wizards</h1></div>;
}
