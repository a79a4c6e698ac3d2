// A real OpenSSH sshd on a loopback port with a fresh ed25519 host key and password login for
// the test user, as the Rust tests start it (orca-cli/tests/support/mod.rs).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SSH_USER = 'orca-test';
export const SSH_PASSWORD = 'orca-Test-pw-7319';

export interface Sshd {
  port: number;
  fingerprint: string;
  stop(): void;
}

/** Why no sshd can run here, or null. */
export function sshdMissing(): string | null {
  if (!existsSync('/usr/sbin/sshd'))
    return '/usr/sbin/sshd is missing (apt-get install openssh-server)';
  if (process.getuid?.() !== 0) return 'the sshd test needs root';
  return null;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

export async function startSshd(): Promise<Sshd> {
  try {
    execFileSync('id', [SSH_USER], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['-m', '-s', '/bin/sh', SSH_USER]);
  }
  execFileSync('chpasswd', { input: `${SSH_USER}:${SSH_PASSWORD}\n` });
  mkdirSync('/run/sshd', { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'orca-e2e-sshd-'));
  const key = join(dir, 'host_ed25519');
  execFileSync('ssh-keygen', ['-q', '-N', '', '-t', 'ed25519', '-f', key]);
  const fingerprint =
    String(execFileSync('ssh-keygen', ['-lf', `${key}.pub`])).split(/\s+/)[1] ?? '';
  const port = await freePort();
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    `Port ${port}\nListenAddress 127.0.0.1\nHostKey ${key}\nPidFile ${dir}/sshd.pid\n` +
      `UsePAM no\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n` +
      `PermitRootLogin no\nAllowUsers ${SSH_USER}\nStrictModes no\nUseDNS no\nMaxStartups 100\n`,
  );
  const child: ChildProcess = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], {
    stdio: 'ignore',
  });
  const stop = () => {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1');
      c.on('connect', () => (c.end(), resolve(true)));
      c.on('error', () => resolve(false));
    });
    if (up) return { port, fingerprint, stop };
    await new Promise((r) => setTimeout(r, 100));
  }
  stop();
  throw new Error('sshd did not start listening');
}
