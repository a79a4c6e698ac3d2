"""Cross-check the WinRM test server with independent clients: pywinrm and pypsrp.

Usage: python crosscheck.py PATH/TO/winrm-testserver

Each scenario starts its own server (NTLM with message encryption over HTTP, or Basic over
HTTPS with the server's CA), runs commands through the client and checks output and exit
codes. Prints one line per check and a final "N passed, N failed" line; exits 1 on failure.
"""

import base64
import json
import os
import subprocess
import sys
import tempfile
import traceback

import winrm
from pypsrp.client import Client

USER, PASSWORD = "orca", "Orca-Test-1"
RESULTS = {"passed": 0, "failed": 0}


class Server:
    def __init__(self, binary, *args):
        self.tmp = tempfile.mkdtemp(prefix="orca-winrm-")
        ca = os.path.join(self.tmp, "ca.pem")
        self.proc = subprocess.Popen(
            [binary, "--user", USER, "--password", PASSWORD, "--ca-out", ca, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the test server did not start")
        self.info = json.loads(line)

    def __enter__(self):
        return self.info

    def __exit__(self, *exc):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def check(name, fn):
    try:
        fn()
        RESULTS["passed"] += 1
        print(f"ok   {name}", flush=True)
    except Exception:  # noqa: BLE001 - report every failure and go on
        RESULTS["failed"] += 1
        print(f"FAIL {name}", flush=True)
        traceback.print_exc()


def eq(got, want, what):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


def pywinrm_checks(info, session_kwargs, label):
    s = winrm.Session(info["endpoint"], auth=(USER, PASSWORD), **session_kwargs)

    def echo():
        r = s.run_cmd("echo", ["hello", "world"])
        eq((r.status_code, r.std_out, r.std_err), (0, b"hello world\r\n", b""), "echo")

    def exit_code():
        eq(s.run_cmd("exit /b 42").status_code, 42, "exit code")
        r = s.run_cmd("echo out& >&2 echo err& exit /b 1")
        eq((r.status_code, r.std_out, r.std_err), (1, b"out\r\n", b"err\r\n"), "streams")

    def powershell():
        r = s.run_ps("Write-Output 'from ps'; Write-Error 'ps failed'; exit 3")
        eq(r.status_code, 3, "exit code")
        eq(r.std_out, b"from ps\r\n", "stdout")
        if b"ps failed" not in r.std_err or b"CLIXML" in r.std_err:
            raise AssertionError(f"stderr not decoded: {r.std_err!r}")

    def utf8_and_timeouts():
        p = winrm.Protocol(
            info["endpoint"],
            username=USER,
            password=PASSWORD,
            operation_timeout_sec=1,
            read_timeout_sec=3,
            **{k: v for k, v in session_kwargs.items() if k != "transport"},
            transport=session_kwargs["transport"],
        )
        shell = p.open_shell(codepage=65001)
        cmd = p.run_command(shell, "echo grüße é& ping -n 3 127.0.0.1 >nul& exit /b 5")
        out, err, code = p.get_command_output(shell, cmd)
        p.cleanup_command(shell, cmd)
        p.close_shell(shell)
        eq((out.decode("utf-8"), err, code), ("grüße é\r\n", b"", 5), "utf-8 across TimedOut polls")

    for name, fn in [("echo", echo), ("exit codes", exit_code), ("powershell", powershell), ("utf8+timedout", utf8_and_timeouts)]:
        check(f"pywinrm {label}: {name}", fn)


def pypsrp_checks(info, client_kwargs, label):
    c = Client("127.0.0.1", port=info["port"], username=USER, password=PASSWORD, path="wsman", **client_kwargs)

    def echo():
        out, err, rc = c.execute_cmd("echo hi from pypsrp")
        eq((out, err, rc), ("hi from pypsrp\r\n", "", 0), "echo")

    def exit_code():
        out, err, rc = c.execute_cmd("echo a& >&2 echo b& exit /b 7")
        eq((out, err, rc), ("a\r\n", "b\r\n", 7), "exit code and streams")

    def powershell():
        script = "Write-Output 'psrp'; exit 9"
        enc = base64.b64encode(script.encode("utf-16-le")).decode()
        out, err, rc = c.execute_cmd(f"powershell -NoProfile -EncodedCommand {enc}")
        eq((out, rc), ("psrp\r\n", 9), "powershell")

    for name, fn in [("echo", echo), ("exit codes", exit_code), ("powershell", powershell)]:
        check(f"pypsrp {label}: {name}", fn)


def main():
    binary = sys.argv[1]
    with Server(binary) as info:
        pywinrm_checks(info, {"transport": "ntlm", "message_encryption": "always"}, "ntlm+encryption")
        pypsrp_checks(info, {"ssl": False, "auth": "ntlm", "encryption": "always"}, "ntlm+encryption")
    with Server(binary, "--https", "--basic") as info:
        pywinrm_checks(
            info,
            {"transport": "basic", "server_cert_validation": "validate", "ca_trust_path": info["ca_file"]},
            "basic+https",
        )
        pypsrp_checks(
            info,
            {"ssl": True, "auth": "basic", "cert_validation": info["ca_file"]},
            "basic+https",
        )
    print(f"pywinrm/pypsrp cross-check: {RESULTS['passed']} passed, {RESULTS['failed']} failed")
    sys.exit(1 if RESULTS["failed"] else 0)


if __name__ == "__main__":
    main()
