import type { Route } from '../route';

export function TracesPage(_: { route: Route }) {
  return <div class="page"><h1>Traces</h1></div>;
}
