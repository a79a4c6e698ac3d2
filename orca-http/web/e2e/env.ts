import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const PORT = Number(process.env.ORCA_E2E_PORT ?? 18290);
export const ADMIN_PASSWORD = 'console-E2E-root-pw-1';
export const VIEWER = 'viewer1';
export const VIEWER_PASSWORD = 'console-E2E-looker-pw-1';
export const STATE_FILE = join(tmpdir(), `orca-e2e-${PORT}.json`);
