"""The cost of a probe defined at run time, from Python (run by
benches/dynamic_bench.sh, in a venv with stap_sdt installed).

Per call, the best of ROUNDS rounds of ITERATIONS:
  baseline      `if False: pass`              (CPython compiles the test away: the bare loop)
  enabled       `if req.enabled: req.fire(..)` untraced (the semaphore is 0)
  attribute     `if req.name: pass`           (a plain attribute, for scale)
and, when STAP_SDT (a stap-sdt binary) is given and we are root, with
`stap-sdt trace -p OUR_PID --count` attached:
  traced        `if req.enabled: req.fire(7, "GET /")` (semaphore up, uprobe hit)
Usage: python dynamic_bench.py ITERATIONS ROUNDS [STAP_SDT]
"""
import os
import signal
import subprocess
import sys
import time

import stap_sdt

iterations = int(sys.argv[1])
rounds = int(sys.argv[2])
stap_sdt_bin = sys.argv[3] if len(sys.argv) > 3 else None

provider = stap_sdt.Provider("bench")
req = provider.probe("request", int, str)
provider.load()


def best(loop, n):
    times = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        loop(n)
        times.append(time.perf_counter_ns() - start)
    return min(times) / n


def baseline(n):
    for _ in range(n):
        if False:
            pass


def enabled(n):
    for _ in range(n):
        if req.enabled:
            req.fire(7, "GET /")


def attribute(n):
    for _ in range(n):
        if req.name:
            pass


base = best(baseline, iterations)
off = best(enabled, iterations)
attr = best(attribute, iterations)
print(f"python {sys.version.split()[0]}, {iterations} iterations, best of {rounds} rounds")
print(f"  baseline   `if False: pass`                      {base:7.1f} ns/iteration")
print(f"  attribute  `if req.name: pass`                   {attr:7.1f} ns/iteration  (+{attr - base:.1f} ns)")
print(f"  untraced   `if req.enabled: req.fire(7, 'GET /')` {off:7.1f} ns/iteration  "
      f"(+{off - base:.1f} ns over `if False:`, x{off / base:.1f})")
assert not req.enabled

if stap_sdt_bin and os.geteuid() == 0:
    tracer = subprocess.Popen(
        [stap_sdt_bin, "trace", "-p", str(os.getpid()), "--count", "bench:request"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not req.enabled:
        if time.monotonic() > deadline:
            sys.exit("the tracer did not raise the semaphore in 30 s")
        time.sleep(0.01)
    n = max(iterations // 20, 1000)
    on = best(enabled, n)
    tracer.send_signal(signal.SIGINT)
    out, _ = tracer.communicate(timeout=30)
    print(f"  traced     `if req.enabled: req.fire(7, 'GET /')` {on:7.1f} ns/iteration  "
          f"({n} iterations; stap-sdt trace --count attached)")
    print("  tracer counted:", " ".join(out.decode().split()))
    while req.enabled:
        time.sleep(0.01)
provider.close()
