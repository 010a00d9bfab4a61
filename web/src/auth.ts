// Who the console's user is and what they may do (GET /api/auth), and the
// login with a token when the console asks for one (Kiali's token
// strategy): the weft admin token, or a Kubernetes token whose RBAC then
// decides what the wizards may write.

import { useEffect, useState } from 'preact/hooks';

export interface AuthInfo {
  strategy: 'anonymous' | 'token';
  authenticated: boolean;
  user?: string;
  anonymous?: boolean;
  admin?: boolean;
  namespace?: string;
  write: boolean;
  error?: string;
}

let current: AuthInfo | undefined;
const listeners = new Set<(a: AuthInfo | undefined) => void>();

function publish(a: AuthInfo | undefined) {
  current = a;
  listeners.forEach((l) => l(a));
}

async function call(method: string, path: string, body?: unknown): Promise<AuthInfo> {
  const resp = await fetch(path, {
    method,
    body: body === undefined ? undefined : JSON.stringify(body),
    headers: body === undefined ? undefined : { 'Content-Type': 'application/json' },
  });
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(data?.error ?? `HTTP ${resp.status}`);
  return data as AuthInfo;
}

// authFor asks what the user may do in namespace ns.
export function authFor(ns: string): Promise<AuthInfo> {
  return call('GET', '/api/auth?namespace=' + encodeURIComponent(ns));
}

export async function refreshAuth(): Promise<void> {
  try {
    publish(await call('GET', '/api/auth'));
  } catch (e: any) {
    publish({ strategy: 'token', authenticated: false, write: false, error: String(e.message ?? e) });
  }
}

export async function login(token: string): Promise<void> {
  publish(await call('POST', '/api/auth/login', { token }));
}

export async function logout(): Promise<void> {
  publish(await call('POST', '/api/auth/logout'));
}

// loggedOut is called when the API answers 401: the login shows again.
export function loggedOut() {
  if (current?.authenticated) refreshAuth();
}

export function useAuth(): AuthInfo | undefined {
  const [a, setA] = useState(current);
  useEffect(() => {
    listeners.add(setA);
    if (!current) refreshAuth();
    return () => void listeners.delete(setA);
  }, []);
  return a;
}
