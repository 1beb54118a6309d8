"""bench/relay.py - the relay part of bench/run (`--parts relay`).

An application submits on the submission port (STARTTLS, AUTH PLAIN,
one message to user@remote.test, QUIT, per connection: bench/subload.c)
and the server relays it to the remote domain, whose only server is
Postfix's smtp-sink on 127.0.0.2:25. A cell is timed from the client's
start until the sink has received the last message. Postfix (its smtpd
with SASL through a private Dovecot, then qmgr and smtp(8)) and postern
(worker, queue, queue process) run one after the other against the same
sink, with the same users file, certificate and routing:

  * routing: both send remote.test to [127.0.0.2]:25 with no DNS lookup
    (postern: `transport remote.test [127.0.0.2]:25`; Postfix:
    `transport_maps` with `remote.test smtp:[127.0.0.2]:25`);
  * TLS to the sink: none for either (smtp-sink offers no STARTTLS;
    postern's opportunistic TLS and Postfix's default level both send in
    plain text then);
  * passwords: {SHA512-CRYPT} (glibc's default 5,000 rounds), which
    Dovecot and postern both verify; Dovecot's passwd-file passdb has no
    cache, so every Postfix login costs one hash; postern runs once with
    its cache as shipped and once with `auth-cache-ttl 0` (every login
    hashed, as Dovecot);
  * concurrency: Postfix's default_destination_concurrency_limit (20)
    and postern's outbound-sessions-per-destination (20), both as
    shipped, both with slow start from 5.

The sink runs once for the whole part (`smtp-sink -c`: its running
counters on stdout are read for the message count).
"""

import os
import select
import signal
import statistics
import subprocess
import tempfile
import time

SINK = "/usr/sbin/smtp-sink"
SINK_ADDR = "127.0.0.2:25"
REMOTE = "remote.test"
RCPT = "user@" + REMOTE
USERS = 20
SESSIONS = (1, 10, 50)
COUNTS = {1: 300, 10: 2000, 50: 2000}
STALL = 30


class BenchError(Exception):
    pass


def log(msg):
    import sys
    print("bench: relay: " + msg, file=sys.stderr, flush=True)


class Sink:
    """smtp-sink on 127.0.0.2:25 as nobody; count() is the number of
    messages it has received (the last `mesg=` of its -c counters)."""

    def __init__(self):
        self.proc = None
        self.buf = b""
        self.n = 0

    def start(self):
        self.proc = subprocess.Popen(
            [SINK, "-c", "-u", "nobody", SINK_ADDR, "1024"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        time.sleep(0.3)
        if self.proc.poll() is not None:
            err = self.proc.stderr.read().decode(errors="replace")
            raise BenchError("smtp-sink on %s did not start (another on "
                             "that address?): %s" % (SINK_ADDR, err[-300:]))
        os.set_blocking(self.proc.stdout.fileno(), False)

    def poll(self, timeout):
        """Read what the sink printed (waiting up to `timeout` s for it);
        the message count."""
        fd = self.proc.stdout.fileno()
        r, _, _ = select.select([fd], [], [], timeout)
        if r:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                chunk = b""
            self.buf = (self.buf + chunk)[-256:]
            last = self.buf.rsplit(b"mesg=", 1)
            if len(last) == 2:
                digits = last[1].split(b"\r", 1)[0]
                if digits.isdigit() and b"\r" in last[1]:
                    self.n = int(digits)
        return self.n

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def make_users(sub):
    """USERS submitters with random passwords hashed as SHA512-CRYPT
    (5,000 rounds, glibc's default), in Dovecot's passwd-file format."""
    import crypt  # deprecated in 3.11, present in Debian 12's Python
    import secrets
    lines, creds = [], []
    for i in range(USERS):
        user = "s%02d@bench.test" % i
        pw = secrets.token_urlsafe(12)
        h = crypt.crypt(pw, crypt.mksalt(crypt.METHOD_SHA512))
        lines.append("%s:{SHA512-CRYPT}%s\n" % (user, h))
        creds.append("%s %s\n" % (user, pw))
    with open(sub.users_file, "w") as f:
        f.writelines(lines)
    os.chmod(sub.users_file, 0o644)   # Dovecot's auth reads it
    path = os.path.join(sub.base, "load.creds")
    with open(path, "w") as f:
        f.writelines(creds)
    sub.files = {"load": path}
    sub.users = [c.split()[0] for c in creds]


def proc_cpu(pid):
    """utime + stime of one process, in seconds (0 when it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            v = f.read().rsplit(")", 1)[1].split()
        return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def queue_pid(srv):
    """postern's queue process: the one that holds queue/state open."""
    state = os.path.join(srv.spool, "queue", "state")
    for p in srv.pids():
        try:
            for fd in os.listdir("/proc/%d/fd" % p):
                if os.readlink("/proc/%d/fd/%s" % (p, fd)) == state:
                    return p
        except OSError:
            continue
    return None


def proc_tree(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/children" % (p, t)) as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return out


def proc_cpu_all(pid):
    """utime + stime + cutime + cstime (children it has reaped)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            v = f.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in v[11:15]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def server_roots(srv, sub):
    """The processes whose trees make the server: postern's master;
    Postfix's master (its pid file) and the private Dovecot (its SASL)."""
    if hasattr(srv, "pids"):
        return [srv.proc.pid] if srv.proc else []
    roots = []
    try:
        with open(os.path.join(srv.queue, "pid", "master.pid")) as f:
            roots.append(int(f.read().split()[0]))
    except (OSError, ValueError, IndexError):
        pass
    if sub.dovecot.proc is not None:
        roots.append(sub.dovecot.proc.pid)
    return roots


def tree_cpu(srv, sub):
    """(CPU s of the server's process trees, children they reaped
    included; of postern's queue process, or None for Postfix)."""
    total = sum(proc_cpu_all(p) for r in server_roots(srv, sub)
                for p in proc_tree(r))
    if not hasattr(srv, "pids"):
        return total, None
    q = queue_pid(srv)
    return total, proc_cpu(q) if q else 0.0


def run_cell(srv, sub, sink, sessions, count, cpu_times, busy_pct):
    """`count` messages over `sessions` connections; seconds from the
    client's start until the sink has them all."""
    jpath = os.path.join(sub.base, "result.json")
    if os.path.exists(jpath):
        os.unlink(jpath)
    base = sink.poll(0)
    q0 = cpu_times()
    time.sleep(0.5)
    quiet = busy_pct(q0, cpu_times())
    cmd = [sub.client, "load", "-p", str(srv.port), "-c", str(sessions),
           "-n", str(count), "-u", sub.files["load"], "-r", RCPT,
           "-s", "1024", "-L", "127.0.0.1", "-j", jpath, "-d", "300"]
    errf = tempfile.TemporaryFile()
    tree0, queue0 = tree_cpu(srv, sub)
    cpu0 = cpu_times()
    t0 = time.monotonic()
    client = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=errf,
                              stderr=errf)
    status, accepted = None, None
    n, last_n, last_t = 0, 0, t0
    limit = 30 + 0.1 * count
    try:
        while True:
            if status is None and client.poll() is not None:
                status = client.returncode
                accepted = time.monotonic() - t0
                if status != 0:
                    break
            n = sink.poll(0.05) - base
            now = time.monotonic()
            if n != last_n:
                last_n, last_t = n, now
            if n >= count:
                break
            if now - t0 > limit or now - last_t > STALL:
                break
    finally:
        e2e = time.monotonic() - t0
        cpu1 = cpu_times()
        tree1, queue1 = tree_cpu(srv, sub)
        deadline = time.monotonic() + 10
        while status is None and time.monotonic() < deadline:
            if client.poll() is not None:
                status = client.returncode
                accepted = time.monotonic() - t0
            time.sleep(0.01)
        if status is None:
            client.kill()
            client.wait()
    errf.seek(0)
    cerr = errf.read().decode("utf-8", "replace").strip()
    errf.close()
    res = None
    if status == 0 and os.path.exists(jpath):
        import json
        with open(jpath) as f:
            res = json.load(f)
    if status != 0 or n < count or res is None or res["failed"]:
        raise BenchError("client exit %s, %s failed, %d of %d at the "
                         "sink after %.1f s; client said: %s; server log "
                         "tail:\n%s" % (
                             status, res and res["failed"], n, count, e2e,
                             cerr[-400:], tail(srv.logfile)))
    cpu = res["cpu_user"] + res["cpu_sys"]
    return {"count": count, "e2e": e2e, "accept": accepted,
            "rate": count / e2e, "extra": n - count,
            "ms_per_msg": 1000.0 * (tree1 - tree0) / count,
            "queue_ms_per_msg": None if queue0 is None else
            1000.0 * (queue1 - queue0) / count,
            "client_cpu_pct": 100.0 * cpu / max(res["elapsed"], 1e-6),
            "busy_pct": busy_pct(cpu0, cpu1), "quiet_pct": quiet}


def tail(path, n=15):
    try:
        with open(path, "rb") as f:
            return "\n".join(f.read().decode("utf-8", "replace")
                             .splitlines()[-n:])
    except OSError as e:
        return "(no log: %s)" % e


def summarize(runs):
    if not runs:
        return None
    mid = sorted(runs, key=lambda r: r["rate"])[len(runs) // 2]
    out = dict(mid)
    out.update({"rate": statistics.median(r["rate"] for r in runs),
                "min": min(r["rate"] for r in runs),
                "max": max(r["rate"] for r in runs), "n": len(runs),
                "client_cpu_pct": max(r["client_cpu_pct"] for r in runs),
                "quiet_pct": max(r["quiet_pct"] for r in runs)})
    return out


def run_server(srv, sub, sink, cells, repeat, results, failures, env):
    """Start, warm up (each user logs in once, 50 messages), run the
    cells, stop."""
    log("%s on 127.0.0.1:%d" % (srv.name, srv.port))
    try:
        srv.setup()
        srv.start()
    except Exception as e:
        failures.append("relay: %s did not start: %s" % (srv.name, e))
        log(failures[-1])
        try:
            srv.stop()
        except Exception:
            pass
        return
    try:
        try:
            run_cell(srv, sub, sink, 10, 50, *env)
        except BenchError as e:
            failures.append("relay: %s warm-up: %s" % (srv.name, e))
            log(failures[-1])
            return
        for sessions, count in cells:
            runs = []
            for i in range(repeat):
                log("%s: %d sessions, %d messages, run %d of %d" % (
                    srv.name, sessions, count, i + 1, repeat))
                try:
                    r = run_cell(srv, sub, sink, sessions, count, *env)
                except BenchError as e:
                    failures.append("relay: %s %d sessions: %s" % (
                        srv.name, sessions, e))
                    log(failures[-1])
                    runs = None
                    break
                runs.append(r)
                log("  %.1f msg/s to the sink (accepted %.2f s, at the "
                    "sink %.2f s), client CPU %.0f%%, machine busy %.0f%%,"
                    " before %.0f%%%s" % (
                        r["rate"], r["accept"], r["e2e"],
                        r["client_cpu_pct"], r["busy_pct"],
                        r["quiet_pct"], "; server CPU %.2f ms/msg%s" % (
                            r["ms_per_msg"], "" if r["queue_ms_per_msg"]
                            is None else ", queue process %.2f ms/msg"
                            % r["queue_ms_per_msg"])))
            results[(srv.name, sessions)] = summarize(runs)
    finally:
        srv.stop()


def report(w, rel):
    """The relay tables (w: append a line)."""
    res, names = rel["results"], rel["names"]
    w("")
    w("## Relay (submission on 587-style port, STARTTLS + AUTH PLAIN, "
      "one 1 KiB message to %s per connection, until all are at "
      "smtp-sink on %s)" % (RCPT, SINK_ADDR))
    w("")
    head = "| sessions | messages |" + "".join(
        " %s msg/s |" % n for n in names)
    pf = names[0] if names and names[0].startswith("Postfix") else None
    for n in names[1:] if pf else ():
        head += " %s / Postfix |" % n
    w(head)
    w("|---:|---:|" + "---:|" * (len(names) + (len(names) - 1 if pf
                                                 else 0)))
    for sessions, count in rel["cells"]:
        row = "| %d | %d |" % (sessions, count)
        for n in names:
            r = res.get((n, sessions))
            row += " %s |" % ("%.1f" % r["rate"] if r else "FAILED")
        if pf:
            base = res.get((pf, sessions))
            for n in names[1:]:
                r = res.get((n, sessions))
                row += " %s |" % ("%.2fx" % (r["rate"] / base["rate"])
                                   if r and base else "-")
        w(row)
    w("")
    w("Median of %d runs; msg/s is messages divided by the time from the "
      "client's start until the sink had the last one. \"accepted\" is "
      "when the client had its last 221; machine busy is the share of "
      "both cores not idle during the median run, \"before\" in the "
      "half second before (the highest of the runs)." % rel["repeat"])
    w("")
    w("Server CPU is the user+system time, per message, during the median "
      "run, of the server's process trees, the children they reaped "
      "included: postern's master, workers, guard and queue process; "
      "Postfix's master and all its daemons (smtpd, cleanup, qmgr, "
      "smtp, tlsmgr, ...) and the private Dovecot's auth processes. "
      "\"queue\" is postern's queue process alone. On a busy machine "
      "this is steadier than msg/s, which is the server's share of the "
      "CPU as much as its cost.")
    w("")
    w("| server | sessions | msg/s | slowest | fastest | accepted s | "
      "at the sink s | client CPU | machine busy | before | server CPU "
      "ms/msg | queue ms/msg |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in names:
        for sessions, _count in rel["cells"]:
            r = res.get((n, sessions))
            if not r:
                w("| %s | %d | FAILED | | | | | | | | | |" % (n, sessions))
                continue
            w("| %s | %d | %.1f | %.1f | %.1f | %.2f | %.2f | %.0f%% | "
              "%.0f%% | %.0f%% | %s | %s |" % (
                  n, sessions, r["rate"], r["min"], r["max"], r["accept"],
                  r["e2e"], r["client_cpu_pct"], r["busy_pct"],
                  r["quiet_pct"],
                  "-" if r["ms_per_msg"] is None
                  else "%.2f" % r["ms_per_msg"],
                  "-" if r["queue_ms_per_msg"] is None
                  else "%.2f" % r["queue_ms_per_msg"]))


def target(w, rel):
    res, names = rel["results"], rel["names"]
    pf = res.get((names[0], 50)) if names else None
    for n in names[1:]:
        r = res.get((n, 50))
        if pf and r:
            ratio = r["rate"] / pf["rate"]
            w("- relay, 50 sessions, %s at least 3x %s: %.2fx, %s" % (
                n, names[0], ratio, "met" if ratio >= 3 else "MISSED"))
