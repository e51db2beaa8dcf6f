#!/usr/bin/env python3
"""freeze --no-attach and watch against bare gdb, on processes of 100, 400
and 1000 threads (bench/threads.c, built as `asterisk-bench`), in one run:

- wall time of `wazo-astdebug freeze --no-attach` (the whole command: the
  /proc reading, its text, proc-locks.txt and the bug report) and of `gdb -batch -nx -ex
  "thread apply all bt" -p PID`, best of 3, and how long the target was
  stopped meanwhile: the time a poller in this script (every ~1 ms) saw its
  TracerPid non-zero or any thread in state t/T. gdb stops every thread from
  attach to detach; /proc stops none;
  The "reading" column is what the command itself reports for the /proc
  step ("read in N ms"), the rest of its wall time being its start and its
  files (the bug report);
- watch's CPU per sample at 1000 threads (idle, and with a deadlock held in
  place but never captured: --confirm above the samples taken), as watch
  itself measures it (CPU time of its sampling thread), and its whole CPU
  (user + system, startup included) divided by the samples;
- watch's resident memory over a day of samples (43200 at the default
  --interval 2), taken back to back (`watch --bench-samples`, hidden: no
  sleep, a freeze only counted, never captured) against the largest frozen
  target, as watch reports it (VmRSS) every tenth of them.

Usage: bench/watch.py [--memory] [THREADS...]   (as root; default 100 400 1000;
       --memory: the memory part alone)
Env:   BIN=path/to/wazo-astdebug       (default: the release build)
       MEMORY_SAMPLES=N                (default 43200)
Nothing here asserts a time: the numbers are ratios measured side by side.
"""
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    binary = os.environ.get("BIN", os.path.join(target, "release", "wazo-astdebug"))
    if "BIN" not in os.environ:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="watch-bench.")
    # asterisk-*: freeze refuses a pid whose executable is not named so; not
    # `asterisk` itself, which a test bed's `pkill -x asterisk` would kill.
    program = os.path.join(work, "asterisk-bench")
    subprocess.run(["cc", "-O2", "-pthread", "-o", program,
                    os.path.join(ROOT, "bench", "threads.c")], check=True)
    return binary, program, work


def start(program, threads, mode):
    child = subprocess.Popen([program, str(threads), mode], stdout=subprocess.PIPE, text=True)
    line = child.stdout.readline()
    assert line.startswith("ready"), line
    return child


class Poller:
    """Seconds during which `pid` was traced or had a stopped thread."""

    def __init__(self, pid):
        self.pid, self.stop, self.stopped = pid, False, 0.0
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def held(self):
        try:
            status = open(f"/proc/{self.pid}/status")
        except OSError:
            raise SystemExit(f"the target (pid {self.pid}) is gone")
        with status:
            for line in status:
                if line.startswith("TracerPid:") and line.split()[1] != "0":
                    return True
                if line.startswith("State:") and line.split()[1] in ("t", "T"):
                    return True
        return False

    def run(self):
        last = time.perf_counter()
        while not self.stop:
            now = time.perf_counter()
            if self.held():
                self.stopped += now - last
            last = now
            time.sleep(0.001)

    def finish(self):
        self.stop = True
        self.thread.join()
        return self.stopped


def timed(argv, pid):
    """(wall seconds, seconds the target was stopped, stderr), best of 3 by wall time."""
    best = None
    for _ in range(3):
        poller = Poller(pid)
        started = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True)
        wall = time.perf_counter() - started
        stopped = poller.finish()
        # gdb -batch exits 1 when its last command warns: what counts is
        # that every thread's backtrace was printed.
        assert done.returncode == 0 or "Thread 1 " in done.stdout, (argv, done.stderr[-2000:])
        if best is None or wall < best[0]:
            best = (wall, stopped, done.stderr)
    return best


def watch_cost(binary, program, threads, mode, out):
    child = start(program, threads, mode)
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = subprocess.run(
            [binary, "-o", out, "watch", "--pid", str(child.pid), "--interval", "0.1",
             "--confirm", "10000", "--max-time", "10"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        child.kill()
        child.wait()
    said = re.search(r"Its own cost: (\d+) samples, ([\d.]+) ms of CPU each on average "
                     r"\(at most ([\d.]+) ms\)", result.stderr)
    assert said, result.stderr
    samples, each, most = int(said.group(1)), float(said.group(2)), float(said.group(3))
    whole = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000 / samples
    return samples, each, most, whole


def watch_memory(binary, program, threads, samples, out):
    """[(samples, resident kB)] as `watch --bench-samples` reports them, and its wall time."""
    child = start(program, threads, "frozen")
    try:
        started = time.perf_counter()
        result = subprocess.run(
            [binary, "-o", out, "watch", "--pid", str(child.pid), "--bench-samples", str(samples)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
        wall = time.perf_counter() - started
    finally:
        child.kill()
        child.wait()
    points = [(int(n), int(kb)) for n, kb in
              re.findall(r"bench: (\d+) samples, resident memory (\d+) kB", result.stderr)]
    assert points, result.stderr
    return points, wall


def memory(binary, program, threads, work):
    samples = int(os.environ.get("MEMORY_SAMPLES", "43200"))
    points, wall = watch_memory(binary, program, threads, samples, os.path.join(work, "memory"))
    print(f"watch --bench-samples {samples} on {threads} threads (frozen), {wall:.0f} s: "
          "resident memory (kB) after N samples:")
    print("  " + ", ".join(f"{n}: {kb}" for n, kb in points))
    first, last = points[0][1], points[-1][1]
    after_tenth = points[1][1] if len(points) > 1 else first
    print(f"  end - first sample: {last - first:+d} kB; end - tenth: {last - after_tenth:+d} kB")


def main():
    memory_only = "--memory" in sys.argv[1:]
    sizes = [int(arg) for arg in sys.argv[1:] if arg != "--memory"] or [100, 400, 1000]
    binary, program, work = build()
    if memory_only:
        memory(binary, program, max(sizes), work)
        subprocess.run(["rm", "-rf", work])
        return
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.split()[-1]
    gdb = subprocess.run(["gdb", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    print(f"wazo-astdebug {version}, {gdb}, target: bench/threads.c (N threads, an ABBA deadlock)")
    print()
    print("threads  freeze --no-attach               gdb thread apply all bt   wall ratio         stopped")
    print("         wall       reading    stopped    wall       stopped        tool/gdb  read/gdb  proc/gdb")
    for threads in sizes:
        child = start(program, threads, "frozen")
        try:
            out = os.path.join(work, f"out-{threads}")
            # --wazo-version: on a PBX the version is a file; here, without
            # it, the bug report would ask apt-cache (half a second).
            proc = timed([binary, "-o", out, "--wazo-version", "26.07", "freeze", "--no-attach",
                          "--pid", str(child.pid)], child.pid)
            bare = timed(["gdb", "-batch", "-nx", "-ex", "thread apply all bt", "-p",
                          str(child.pid)], child.pid)
        finally:
            child.kill()
            child.wait()
        # What the command says the /proc reading itself took.
        reading = re.search(r"read in ([\d.]+) ms without stopping it", proc[2])
        read_ms = float(reading.group(1)) if reading else float("nan")
        print(f"{threads:>7}  {proc[0] * 1000:7.1f} ms  {read_ms:6.1f} ms  {proc[1] * 1000:5.1f} ms  "
              f"{bare[0] * 1000:7.1f} ms  {bare[1] * 1000:7.1f} ms     "
              f"{proc[0] / bare[0]:7.4f}   {read_ms / 1000 / bare[0]:7.4f}   {proc[1] / bare[1]:.4f}")
    print()
    threads = max(sizes)
    for mode in ("idle", "frozen"):
        samples, each, most, whole = watch_cost(binary, program, threads, mode,
                                                os.path.join(work, f"watch-{mode}"))
        print(f"watch --interval 0.1 on {threads} threads ({mode}): {samples} samples, "
              f"{each:.2f} ms of CPU per sample (at most {most:.2f} ms); whole process "
              f"{whole:.2f} ms per sample; at the default --interval 2: "
              f"{each / 2000 * 100:.3f} % of one core")
    print()
    memory(binary, program, threads, work)
    subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
