import { readFileSync, rmSync } from 'node:fs';
import { STATE_FILE } from './env';

export default async function globalTeardown() {
  const { pid, dir } = JSON.parse(readFileSync(STATE_FILE, 'utf8')) as { pid: number; dir: string };
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    /* already gone */
  }
  await new Promise((r) => setTimeout(r, 500));
  rmSync(dir, { recursive: true, force: true });
  rmSync(STATE_FILE, { force: true });
}
