// The login form of the token strategy.

import { useState } from 'preact/hooks';
import { login, type AuthInfo } from '../auth';
import { ErrorBox } from './common';

export function LoginPage({ auth }: { auth: AuthInfo }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState(auth.error ?? '');
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      await login(token.trim());
    } catch (err: any) {
      setError(String(err.message ?? err));
    }
  };
  return (
    <div class="page login">
      <form class="login-form" aria-label="Log in" onSubmit={submit}>
        <h1>Log in to the console</h1>
        <p class="muted">
          Paste a token: the weft admin token (the <code>token</code> of <code>admin-credentials.json</code> in the control
          plane's data dir), or a Kubernetes token (<code>kubectl create token NAME</code>), whose RBAC on Istio's resources
          decides what you may change.
        </p>
        <label>
          Token <input type="password" aria-label="Token" autocomplete="off" value={token} onInput={(e) => setToken((e.target as HTMLInputElement).value)} />
        </label>
        <div class="buttons">
          <button class="primary" type="submit" disabled={!token.trim()}>
            Log in
          </button>
        </div>
        {error && <ErrorBox error={error} />}
      </form>
    </div>
  );
}
