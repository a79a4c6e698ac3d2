import { afterEach, describe, expect, it, vi } from 'vitest';
import { accessToken, authFetch, errorOf, login, logout, readCookie, refresh } from './session';

function json(status: number, body: unknown, headers: Record<string, string> = {}) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

afterEach(() => {
  vi.restoreAllMocks();
  document.cookie = 'orca_csrf=; max-age=0';
});

describe('session', () => {
  it('reads the CSRF cookie by exact name', () => {
    expect(readCookie('orca_csrf', 'a=1; orca_csrf=xyz; orca_csrf2=no')).toBe('xyz');
    expect(readCookie('orca_csrf', 'a=1')).toBe('');
  });

  it('shows the throttling message of a 429', async () => {
    const e = await errorOf(
      json(429, { code: 'rate_limited', message: 'x' }, { 'retry-after': '7' }),
    );
    expect(e.message).toBe('Too many attempts. Try again in 7 s.');
    expect(e.retryAfter).toBe(7);
  });

  it('keeps the access token in memory and refreshes with the CSRF header', async () => {
    const calls: [string, RequestInit | undefined][] = [];
    vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      calls.push([String(input), init]);
      if (String(input).endsWith('/login'))
        return json(200, { access_token: 'a1', expires_in: 900 });
      if (String(input).endsWith('/refresh'))
        return json(200, { access_token: 'a2', expires_in: 900 });
      if (String(input).endsWith('/data')) {
        const auth = new Headers(init?.headers).get('authorization');
        return auth === 'Bearer a2' ? json(200, {}) : json(401, {});
      }
      return new Response(null, { status: 204 });
    });
    await login('admin', 'pw');
    expect(accessToken()).toBe('a1');
    document.cookie = 'orca_csrf=tok';
    // A 401 renews the access token once and retries.
    const r = await authFetch('/api/v1/data');
    expect(r.status).toBe(200);
    const refreshCall = calls.find(([u]) => u.endsWith('/refresh'));
    expect(new Headers(refreshCall?.[1]?.headers).get('x-csrf-token')).toBe('tok');
    expect(accessToken()).toBe('a2');
    expect(localStorage.length).toBe(0);
    await logout();
    expect(accessToken()).toBeNull();
  });

  it('without the CSRF cookie there is no session to renew', async () => {
    const f = vi.spyOn(globalThis, 'fetch');
    expect(await refresh()).toBe(false);
    expect(f).not.toHaveBeenCalled();
  });
});
