"""A real OpenSSH sshd on a free loopback port for the SSH tests: temporary config and host
key, and the dedicated test user `orca-test` (shell /bin/sh, no rc files), as in the Rust
connector tests' harness. Needs root and /usr/sbin/sshd."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

SSHD = "/usr/sbin/sshd"
USER = "orca-test"
PASSWORD = "orca-Test-pw-7319"


def unavailable() -> Optional[str]:
    """Why no sshd can run here, or None."""
    if not Path(SSHD).exists():
        return f"{SSHD} is not installed (apt-get install openssh-server)"
    if os.geteuid() != 0:
        return "the sshd tests need root (sshd switches to the test user)"
    if shutil.which("ssh-keygen") is None:
        return "ssh-keygen is not installed"
    return None


def _prepare_user() -> None:
    if subprocess.run(["id", USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", USER], check=True)
    subprocess.run(["chpasswd"], input=f"{USER}:{PASSWORD}\n", text=True, check=True)
    home = subprocess.run(
        ["sh", "-c", f"getent passwd {USER} | cut -d: -f6"], capture_output=True, text=True, check=True
    ).stdout.strip()
    for rc in (".bashrc", ".profile", ".bash_logout", ".bash_profile"):
        try:
            os.remove(os.path.join(home, rc))
        except FileNotFoundError:
            pass
    os.makedirs("/run/sshd", exist_ok=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sshd:
    """A running sshd; `stop()` kills it and removes its directory."""

    def __init__(self) -> None:
        _prepare_user()
        self.dir = Path(tempfile.mkdtemp(prefix="orca-py-sshd-"))
        os.chmod(self.dir, 0o755)
        key = self.dir / "ssh_host_ed25519_key"
        subprocess.run(["ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-f", str(key)], check=True)
        (self.dir / "authorized_keys").write_text("")
        self.proc: Optional[subprocess.Popen[bytes]] = None
        for _ in range(5):
            self.port = _free_port()
            config = (
                f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {key}\n"
                f"PidFile {self.dir}/sshd.pid\nAuthorizedKeysFile {self.dir}/authorized_keys\n"
                "StrictModes no\nUsePAM no\nPasswordAuthentication yes\n"
                "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin no\n"
                f"AllowUsers {USER}\nMaxStartups 2000\nMaxSessions 10\nUseDNS no\nPrintMotd no\n"
            )
            (self.dir / "sshd_config").write_text(config)
            log = open(self.dir / "sshd.log", "wb")
            self.proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(self.dir / "sshd_config")],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return
                except OSError:
                    time.sleep(0.02)
            self.proc.kill()
            self.proc.wait()
            if "Address already in use" not in (self.dir / "sshd.log").read_text():
                raise RuntimeError("sshd did not start: " + (self.dir / "sshd.log").read_text())
        raise RuntimeError("sshd could not find a free port")

    def client_key(self) -> str:
        """A new ed25519 private key authorized for the test user."""
        path = self.dir / f"id_{len(list(self.dir.glob('id_*')))}"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
        with open(self.dir / "authorized_keys", "a") as f:
            f.write(path.with_suffix(".pub").read_text())
        return path.read_text()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
