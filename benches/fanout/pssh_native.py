#!/usr/bin/env python3
"""Run a command on many hosts with parallel-ssh (PyPI `parallel-ssh`, ParallelSSHClient),
checking host keys against a known_hosts file -- the driver of benches/fanout/run.sh.

parallel-ssh 2.x does not check host keys itself. This driver checks the key each server
presents after the handshake and before authentication (nothing is sent to a server whose key
is not listed), by wrapping the native client's `_init_session`. The known_hosts file is read
once (plain `host` / `[host]:port` entries, as run.sh writes it).

usage: pssh_native.py HOSTS KNOWN_HOSTS KEY USER POOL_SIZE COMMAND
HOSTS lists `host:port` per line. Prints `HOST exit=CODE` or `HOST error=REASON` per host and
`summary ok=N failed=M`; exits 0 only if every host ran COMMAND with exit 0.
"""

import base64
import sys

import pssh.clients.native.parallel as native_parallel
from pssh.clients.native.parallel import ParallelSSHClient
from pssh.clients.native.single import SSHClient
from pssh.config import HostConfig


class HostKeyError(Exception):
    """The server's host key is not in the known_hosts file."""


def read_known_hosts(path):
    known = {}
    with open(path) as f:
        for line in f:
            fields = line.split()
            if len(fields) < 3 or fields[0].startswith(("#", "@", "|")):
                continue
            blob = base64.b64decode(fields[2])
            for name in fields[0].split(","):
                known.setdefault(name.lower(), set()).add(blob)
    return known


KNOWN = {}


class CheckedSSHClient(SSHClient):
    """The native client, refusing servers whose host key is not listed."""

    def _init_session(self, retries=1):
        super()._init_session(retries=retries)
        key, _ktype = self.session.hostkey()
        name = self.host.lower() if self.port == 22 else "[%s]:%d" % (self.host.lower(), self.port)
        if bytes(key) not in KNOWN.get(name, ()):
            raise HostKeyError("host key of %s is not in the known_hosts file" % name)


def main():
    hosts_file, known_hosts, key, user, pool_size = sys.argv[1:6]
    command = " ".join(sys.argv[6:])
    KNOWN.update(read_known_hosts(known_hosts))
    native_parallel.SSHClient = CheckedSSHClient
    hosts, configs = [], []
    with open(hosts_file) as f:
        for line in f:
            line = line.split("#")[0].strip()
            if not line:
                continue
            host, _, port = line.rpartition(":")
            hosts.append(host)
            configs.append(HostConfig(port=int(port)))
    client = ParallelSSHClient(
        hosts,
        host_config=configs,
        user=user,
        pkey=key,
        pool_size=int(pool_size),
        num_retries=1,
        timeout=120,
        allow_agent=False,
        identity_auth=False,
    )
    output = client.run_command(command, stop_on_errors=False)
    client.join(output)
    ok = failed = 0
    for host_out, cfg in zip(output, configs):
        label = "%s:%d" % (host_out.host, cfg.port)
        if host_out.exception is not None:
            failed += 1
            print("%s error=%s" % (label, repr(host_out.exception).replace("\n", " ")))
            continue
        code = host_out.exit_code
        print("%s exit=%s" % (label, code))
        if code == 0:
            ok += 1
        else:
            failed += 1
    print("summary ok=%d failed=%d" % (ok, failed))
    return 0 if failed == 0 and ok == len(hosts) else 1


if __name__ == "__main__":
    sys.exit(main())
