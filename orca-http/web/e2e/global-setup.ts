// Start `orca serve` on a temporary data directory, wait until it answers, create a viewer.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ADMIN_PASSWORD, PORT, VIEWER, VIEWER_PASSWORD, STATE_FILE } from './env';

export default async function globalSetup() {
  const target = process.env.CARGO_TARGET_DIR ?? resolve(process.cwd(), '../../target');
  const bin = process.env.ORCA_BIN ?? join(target, 'release', 'orca');
  const dir = mkdtempSync(join(tmpdir(), 'orca-e2e-'));
  const child = spawn(bin, ['serve', '--listen', `127.0.0.1:${PORT}`], {
    env: {
      ...process.env,
      ORCA_DATA_DIR: join(dir, 'data'),
      ORCA_ADMIN_PASSWORD: ADMIN_PASSWORD,
      // Room for every test's sign-in; the throttling test still reaches the limit quickly.
      ORCA_HTTP_RATE_LIMIT_LOGIN_PER_ACCOUNT_PER_MINUTE: '20',
      ORCA_HTTP_RATE_LIMIT_LOGIN_PER_ADDRESS_PER_MINUTE: '80',
      ORCA_HTTP_RATE_LIMIT_LOGIN_ACCOUNT_DELAY_MS: '20',
      ORCA_HTTP_RATE_LIMIT_LOGIN_ACCOUNT_DELAY_MAX_MS: '100',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: false,
  });
  let out = '';
  child.stdout.on('data', (d) => (out += String(d)));
  child.stderr.on('data', (d) => (out += String(d)));
  writeFileSync(STATE_FILE, JSON.stringify({ pid: child.pid, dir }));
  const base = `http://127.0.0.1:${PORT}`;
  for (let i = 0; ; i++) {
    try {
      const r = await fetch(`${base}/healthz`);
      if (r.ok) break;
    } catch {
      /* not yet */
    }
    if (i > 120 || child.exitCode !== null) throw new Error(`orca serve did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const login = await fetch(`${base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
  });
  const { access_token } = (await login.json()) as { access_token: string };
  const created = await fetch(`${base}/api/v1/users`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${access_token}` },
    body: JSON.stringify({ username: VIEWER, role: 'viewer', password: VIEWER_PASSWORD }),
  });
  if (!created.ok) throw new Error(`cannot create the viewer: ${await created.text()}`);
}
