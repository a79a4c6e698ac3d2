"""pywinrm side of the WinRM benchmark (benches/winrm/main.rs starts it).

Runs COMMANDS x `Session.run_cmd(command)` on every endpoint (NTLM, message_encryption='always'),
one pywinrm Session per endpoint, the endpoints in a thread pool, and prints one line:
`wall=SECONDS cpu=SECONDS ok=N failed=N` (cpu: this process, user + system).
"""

import argparse
import concurrent.futures
import sys
import time

import winrm


def system(endpoint, args):
    s = winrm.Session(
        endpoint,
        auth=(args.user, args.password),
        transport="ntlm",
        message_encryption="always",
    )
    ok = 0
    for _ in range(args.commands):
        r = s.run_cmd(args.command)
        if r.status_code == 0 and r.std_out.strip() == b"hello":
            ok += 1
        else:
            print(f"unexpected result from {endpoint}: {r.status_code} {r.std_out!r} {r.std_err!r}",
                  file=sys.stderr)
    return ok


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--commands", type=int, default=10)
    p.add_argument("--threads", type=int, default=100)
    p.add_argument("--command", default="echo hello")
    p.add_argument("endpoints", nargs="+")
    args = p.parse_args()
    threads = max(1, min(args.threads, len(args.endpoints)))
    t0, c0 = time.perf_counter(), time.process_time()
    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
        oks = list(pool.map(lambda e: system(e, args), args.endpoints))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    ok = sum(oks)
    failed = len(args.endpoints) * args.commands - ok
    print(f"wall={wall:.6f} cpu={cpu:.6f} ok={ok} failed={failed}")


if __name__ == "__main__":
    main()
