// The browser side of the console's sign-in. The access token lives in this module's memory
// only; the refresh token is an HttpOnly cookie the server sets and rotates
// (`/api/v1/auth/console/*`); requests the cookie authenticates repeat the `orca_csrf` cookie
// in `X-CSRF-Token`. Tabs coordinate through a Web Lock (one refresh at a time, as each refresh
// token works once) and a BroadcastChannel (a logout in one tab ends them all).

export class HttpError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public retryAfter?: number,
  ) {
    super(message);
  }
}

interface Access {
  token: string;
  expiresAt: number;
}

let access: Access | null = null;
let timer: ReturnType<typeof setTimeout> | undefined;
let inflight: Promise<boolean> | null = null;
const listeners = new Set<(signedIn: boolean) => void>();
const channel: BroadcastChannel | null =
  typeof BroadcastChannel === 'undefined' ? null : new BroadcastChannel('orca-auth');

channel?.addEventListener('message', (e: MessageEvent) => {
  if (e.data === 'logout') drop();
});

/** The current access token, if signed in. */
export function accessToken(): string | null {
  return access && access.expiresAt > Date.now() ? access.token : null;
}

/** Be told when this tab signs in or out. */
export function onAuthChange(f: (signedIn: boolean) => void): () => void {
  listeners.add(f);
  return () => listeners.delete(f);
}

function notify(signedIn: boolean) {
  for (const f of listeners) f(signedIn);
}

/** The value of a cookie script may read (the CSRF token; never a credential). */
export function readCookie(name: string, cookies: string = document.cookie): string {
  for (const part of cookies.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return '';
}

/** An error from an answer's `{code, message}` body. */
export async function errorOf(resp: Response): Promise<HttpError> {
  let code = 'error';
  let message = `${resp.status} ${resp.statusText}`;
  try {
    const body = (await resp.json()) as { code?: string; message?: string };
    code = body.code ?? code;
    message = body.message ?? message;
  } catch {
    /* not JSON */
  }
  const ra = Number(resp.headers.get('retry-after'));
  if (resp.status === 429) {
    message = `Too many attempts. ${Number.isFinite(ra) && ra > 0 ? `Try again in ${ra} s.` : 'Try again later.'}`;
  }
  return new HttpError(resp.status, code, message, Number.isFinite(ra) ? ra : undefined);
}

interface SessionBody {
  access_token: string;
  expires_in: number;
}

function accept(body: SessionBody) {
  access = { token: body.access_token, expiresAt: Date.now() + body.expires_in * 1000 };
  clearTimeout(timer);
  // Renew a minute before expiry (or at 80% of a short lifetime).
  const inMs = Math.max(5_000, Math.min(body.expires_in * 800, (body.expires_in - 60) * 1000));
  timer = setTimeout(() => void refresh(), inMs);
}

function drop() {
  const was = access !== null;
  access = null;
  clearTimeout(timer);
  if (was) notify(false);
}

/** Sign in with a user name and password. Throws an HttpError (401, 429…). */
export async function login(username: string, password: string): Promise<void> {
  const resp = await fetch('/api/v1/auth/console/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    credentials: 'same-origin',
    body: JSON.stringify({ username, password }),
  });
  if (!resp.ok) throw await errorOf(resp);
  accept((await resp.json()) as SessionBody);
  notify(true);
}

async function refreshOnce(): Promise<boolean> {
  const csrf = readCookie('orca_csrf');
  if (!csrf) {
    drop();
    return false;
  }
  const resp = await fetch('/api/v1/auth/console/refresh', {
    method: 'POST',
    headers: { 'x-csrf-token': csrf },
    credentials: 'same-origin',
  });
  if (!resp.ok) {
    drop();
    return false;
  }
  const wasSignedIn = access !== null;
  accept((await resp.json()) as SessionBody);
  if (!wasSignedIn) notify(true);
  return true;
}

/** Renew the access token from the refresh cookie. One at a time across tabs. */
export function refresh(): Promise<boolean> {
  if (!inflight) {
    const run = () => refreshOnce().catch(() => false);
    const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined;
    const p: Promise<boolean> = locks
      ? (locks.request('orca-refresh', run) as unknown as Promise<boolean>)
      : run();
    inflight = p.finally(() => {
      inflight = null;
    });
  }
  return inflight as Promise<boolean>;
}

/** Sign out here and in every other tab. */
export async function logout(): Promise<void> {
  const csrf = readCookie('orca_csrf');
  try {
    await fetch('/api/v1/auth/console/logout', {
      method: 'POST',
      headers: { 'x-csrf-token': csrf },
      credentials: 'same-origin',
    });
  } finally {
    channel?.postMessage('logout');
    drop();
  }
}

/** `fetch` with the access token, renewing it once on a 401. */
export async function authFetch(input: string, init: RequestInit = {}): Promise<Response> {
  const go = () => {
    const headers = new Headers(init.headers);
    const t = accessToken();
    if (t) headers.set('authorization', `Bearer ${t}`);
    return fetch(input, { ...init, headers });
  };
  if (!accessToken()) await refresh();
  let resp = await go();
  if (resp.status === 401 && (await refresh())) resp = await go();
  return resp;
}
