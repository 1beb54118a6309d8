"""The metrics endpoint (docs/metrics.md, issue 10 item 5): the output
passes `promtool check metrics` in both formats, the counters move by
exactly what the test did, and the HTTP side answers what it must and
nothing more."""

import http.client
import os
import re
import signal
import smtplib
import socket
import stat
import subprocess
import time

import pytest

from conftest import ALICE, ALICE_PW
from helpers import free_port, plain_b64, wait_for

OM_ACCEPT = ("application/openmetrics-text;version=1.0.0,"
             "application/openmetrics-text;version=0.0.1;q=0.75,"
             "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


@pytest.fixture(scope="module")
def msrv(tmp_path_factory):
    from conftest import Server, finish
    port = free_port()
    srv = Server(tmp_path_factory.mktemp("postern-metrics"),
                 submission=True, metrics_listen="127.0.0.1:%d" % port)
    srv.metrics_port = port
    srv.start()
    yield srv
    finish(srv)


def get(srv, path="/metrics", method="GET", accept=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", srv.metrics_port,
                                   timeout=10)
    h = dict(headers or {})
    if accept is not None:
        h["Accept"] = accept
    c.request(method, path, headers=h)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r, body


def samples(text):
    """{'name{labels}': float} of every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, line
        out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def scrape(srv):
    r, body = get(srv)
    assert r.status == 200
    return samples(body.decode())


def promtool_check(text):
    p = subprocess.run(["promtool", "check", "metrics"], input=text,
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def send_mx(srv, n):
    for i in range(n):
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as s:
            s.sendmail("someone@example.org", [ALICE],
                       "Subject: m%d\r\n\r\nbody %d\r\n" % (i, i))


def fail_login(srv, password="not-the-password"):
    c = srv.sub("587")
    r = c.cmd("AUTH PLAIN " + plain_b64(ALICE, password))
    assert r.code == 535, r
    c.close()


def test_text_format_passes_promtool(msrv):
    r, body = get(msrv)
    assert r.status == 200
    assert r.getheader("Content-Type") == \
        "text/plain; version=0.0.4; charset=utf-8"
    rc, out = promtool_check(body.decode())
    assert rc == 0, out
    text = body.decode()
    # base units, _total on counters, one TYPE per family
    assert "# TYPE postern_connections_total counter" in text
    assert "# TYPE postern_spool_commit_seconds histogram" in text
    assert 'postern_spool_commit_seconds_bucket{le="+Inf"}' in text


def test_openmetrics_when_asked(msrv):
    r, body = get(msrv, accept=OM_ACCEPT)
    assert r.status == 200
    assert r.getheader("Content-Type").startswith(
        "application/openmetrics-text; version=1.0.0")
    text = body.decode()
    assert text.endswith("# EOF\n")
    assert "# TYPE postern_connections counter" in text
    assert "postern_connections_total{" in text
    # promtool (2.42) reads the 0.0.4 format only: it takes an
    # OpenMetrics counter family (named without _total) for a family
    # without help. The OpenMetrics parser of the Python client is strict:
    # it refuses a missing # EOF, a counter sample without _total, an
    # unordered histogram.
    from prometheus_client.openmetrics.parser import \
        text_string_to_metric_families
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert fams["postern_logins"].type == "counter"
    assert fams["postern_guard_verify_seconds"].type == "histogram"
    assert fams["postern_sessions_open"].type == "gauge"


def test_wildcard_or_old_version_gets_text(msrv):
    for accept in ("*/*", "text/plain", "application/json",
                   "application/openmetrics-text;version=0.0.1",
                   "application/openmetrics-text;q=0",
                   "text/plain;q=1, application/openmetrics-text;q=0.5"):
        r, body = get(msrv, accept=accept)
        assert r.status == 200
        assert r.getheader("Content-Type").startswith("text/plain"), accept
        assert b"# EOF" not in body


def test_counters_move_with_what_was_done(msrv):
    before = scrape(msrv)
    send_mx(msrv, 3)
    fail_login(msrv)
    fail_login(msrv)

    def moved():
        a = scrape(msrv)
        return (a['postern_messages_accepted_total{role="mx"}'] -
                before['postern_messages_accepted_total{role="mx"}'] >= 3
                and a['postern_logins_total{result="failure"}'] -
                before['postern_logins_total{result="failure"}'] >= 2
                and a['postern_sessions_open{role="mx"}'] == 0
                and a['postern_sessions_open{role="submission"}'] == 0)
    assert wait_for(moved, 10)
    after = scrape(msrv)

    def delta(key):
        return after[key] - before[key]
    assert delta('postern_messages_accepted_total{role="mx"}') == 3
    assert delta('postern_recipients_accepted_total{role="mx"}') == 3
    assert delta('postern_logins_total{result="failure"}') == 2
    assert delta('postern_logins_total{result="success"}') == 0
    assert delta('postern_connections_total{role="mx",result="accepted"}') \
        == 3
    assert delta('postern_connections_total{role="submission",'
                 'result="accepted"}') == 2
    assert delta('postern_messages_accepted_total{role="submission"}') == 0
    assert delta('postern_received_bytes_total{role="mx"}') > 3 * 20
    assert delta('postern_spool_commit_seconds_count') >= 1
    assert delta('postern_guard_verify_seconds_count') == 2
    assert after["postern_start_time_seconds"] > 1.7e9
    rc, out = promtool_check(get(msrv)[1].decode())
    assert rc == 0, out


def test_refused_message_counted_by_reason(msrv):
    before = scrape(msrv)
    with smtplib.SMTP("127.0.0.1", msrv.port, timeout=30) as s:
        code, _ = s.ehlo("c.example")
        s.mail("someone@example.org")
        s.rcpt(ALICE)
        code, _ = s.data("Subject: big\r\n\r\n" + "x" * (11 << 20))
        assert code == 552
    after = scrape(msrv)
    assert after['postern_messages_refused_total{reason="size"}'] - \
        before['postern_messages_refused_total{reason="size"}'] == 1
    assert after['postern_messages_accepted_total{role="mx"}'] == \
        before['postern_messages_accepted_total{role="mx"}']


def test_worker_restart_counted(msrv):
    before = scrape(msrv)["postern_worker_restarts_total"]
    # the master's children: guard, queue, metrics and the workers; the
    # workers are the ones holding the mx listener
    victims = [p for p in msrv.workers() if pid_listens(p, msrv.port)]
    assert victims
    victim = victims[0]
    os.kill(victim, signal.SIGKILL)
    assert wait_for(lambda: scrape(msrv)["postern_worker_restarts_total"]
                    == before + 1, 10)


def pid_listens(pid, port):
    """Does process `pid` hold the listening socket of `port`?"""
    inodes = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if parts[3] == "0A" and int(parts[1].split(":")[1], 16) == port:
                inodes.add(parts[9])
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            return True
    return False


def test_only_get_and_head_of_metrics(msrv):
    r, body = get(msrv, method="HEAD")
    assert r.status == 200 and body == b""
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        r, _ = get(msrv, method=method)
        assert r.status == 405, method
        assert r.getheader("Allow") == "GET, HEAD"
    for path in ("/", "/metricsx", "/metrics/", "/../metrics", "/x"):
        r, _ = get(msrv, path=path)
        assert r.status == 404, path
    r, body = get(msrv, path="/metrics?name[]=x")
    assert r.status == 200 and b"postern_" in body


def test_oversized_request_refused(msrv):
    r, _ = get(msrv, headers={"X-Pad": "a" * 20000})
    assert r.status in (400, 413, 431)
    # the endpoint still answers
    assert get(msrv)[0].status == 200


def test_slow_client_is_dropped(msrv):
    """A client that sends half a request is closed by the endpoint's
    timeout (10 s), and others are served meanwhile."""
    s = socket.create_connection(("127.0.0.1", msrv.metrics_port), 5)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    assert get(msrv)[0].status == 200
    s.settimeout(30)
    start = time.monotonic()
    data = b"x"
    while data and time.monotonic() - start < 30:
        data = s.recv(4096)
    s.close()
    assert data == b""


def test_mapping_file_mode(msrv):
    path = os.path.join(msrv.root, "metrics")
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert stat.S_ISREG(st.st_mode)


def test_endpoint_process_cannot_write_the_mapping(msrv):
    """The endpoint maps the file read-only: no writable mapping of it
    in its /proc/PID/maps."""
    path = os.path.realpath(os.path.join(msrv.root, "metrics"))
    found = []
    for pid in msrv.workers():
        try:
            with open("/proc/%d/maps" % pid) as f:
                maps = f.read()
        except OSError:
            continue
        if not pid_listens(pid, msrv.metrics_port):
            continue
        for line in maps.splitlines():
            if line.endswith(path):
                found.append(line.split()[1])
    assert found, "no endpoint process found"
    assert all(perms.startswith("r-") for perms in found), found


def test_off_by_default(make_server):
    srv = make_server()
    assert "role=metrics" not in srv.log()
    # the mapping exists anyway (postern status reads it)
    assert os.path.exists(os.path.join(srv.root, "metrics"))


# --- postern status (issue 10 item 7) ------------------------------------


def status(srv):
    p = srv.cli("status")
    assert "AddressSanitizer" not in p.stderr
    return p


def status_field(text, name):
    for line in text.splitlines():
        if line.startswith(name):
            return line[len(name):].strip()
    raise AssertionError("no %r line in:\n%s" % (name, text))


def test_status_screen_numbers(make_server):
    srv = make_server(submission=True)
    p = status(srv)
    assert p.returncode == 0, p.stdout + p.stderr
    assert status_field(p.stdout, "messages") == \
        "last hour 0, last day 0 (accepted)"
    assert status_field(p.stdout, "logins") == \
        "0 ok, 0 failed, 0 locked out (since start)"
    send_mx(srv, 3)
    fail_login(srv)
    fail_login(srv)
    c = srv.sub("587")  # held open while status runs
    assert wait_for(lambda: "submission 1," in status_field(
        status(srv).stdout, "sessions"), 10)
    p = status(srv)
    out = p.stdout
    assert status_field(out, "messages") == \
        "last hour 3, last day 3 (accepted)"
    assert status_field(out, "logins") == \
        "0 ok, 2 failed, 0 locked out (since start)"
    assert status_field(out, "sessions") == \
        "mx 0, submission 1, submissions 0"
    assert re.match(r"^\d\d:\d\d:\d\d$", status_field(out, "uptime"))
    assert status_field(out, "held mail") == "0 messages"
    # three local messages: nothing queued
    assert status_field(out, "queue").startswith(
        "messages=0 recipients=0 destinations=0")
    assert status_field(out, "locks").startswith("0 locks")
    c.close()


def test_status_says_what_is_not_available(make_server):
    srv = make_server()
    # a guard without the TOP and ALARMS commands, or not reachable:
    # each part says so and the rest is shown
    p = status(srv)
    out = p.stdout
    for name in ("top senders", "alarms"):
        v = status_field(out, name)
        assert not v.startswith("not available (") or \
            v.endswith("command)"), v
    srv.stop()
    p = status(srv)
    out = p.stdout
    assert status_field(out, "queue").startswith("not available (")
    assert status_field(out, "locks").startswith(
        "not available (postern: cannot reach the guard")
    # the numbers of the last run stay readable
    assert status_field(out, "messages").startswith("last hour 0")


def test_status_without_mapping(tmp_path):
    from conftest import postern_bin
    conf = tmp_path / "p.conf"
    conf.write_text("hostname h.test\ndomains h.test\nmailbox a@h.test\n"
                    "spool %s/spool\ncontrol-socket %s/run/c.sock\n"
                    "listen 127.0.0.1:1 mx\n" % (tmp_path, tmp_path))
    p = subprocess.run([postern_bin(), "status", "-c", str(conf)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert "numbers      not available (" in p.stdout
    assert "queue        not available (" in p.stdout


def test_body_refused(msrv):
    c = http.client.HTTPConnection("127.0.0.1", msrv.metrics_port,
                                   timeout=10)
    c.request("GET", "/metrics", body=b"x" * 100)
    r = c.getresponse()
    r.read()
    c.close()
    assert r.status == 413


def test_tls_failure_counted(msrv):
    before = scrape(msrv)['postern_tls_handshake_failures_total'
                          '{direction="inbound"}']
    s = socket.create_connection(("127.0.0.1", msrv.sub_port("465")), 10)
    s.sendall(b"EHLO not-a-client-hello\r\n" * 4)
    s.settimeout(10)
    try:
        while s.recv(4096):
            pass
    except OSError:
        pass
    s.close()
    assert wait_for(lambda: scrape(msrv)[
        'postern_tls_handshake_failures_total{direction="inbound"}']
        == before + 1, 10)


def test_metrics_process_restarted(msrv):
    pids = [p for p in msrv.workers() if pid_listens(p, msrv.metrics_port)]
    assert len(pids) == 1
    os.kill(pids[0], signal.SIGKILL)

    def back():
        try:
            return get(msrv)[0].status == 200
        except OSError:
            return False
    assert wait_for(back, 15)
    assert "metrics died pid=%d" % pids[0] in msrv.log()


def test_locks_gauge(make_server):
    port = free_port()
    srv = make_server(submission=True, auth_account_failures=2,
                      metrics_listen="127.0.0.1:%d" % port)
    srv.metrics_port = port
    assert scrape(srv)['postern_locks_active{kind="account"}'] == 0
    # two different wrong passwords (a repeated one counts once)
    fail_login(srv, "wrong-one")
    fail_login(srv, "wrong-two")
    assert wait_for(lambda: scrape(srv)[
        'postern_locks_active{kind="account"}'] == 1, 10)
    assert "1 lock" in srv.cli("locks").stdout


def test_login_networks_alarm_counted(make_server):
    port = free_port()
    srv = make_server(submission=True, login_networks_hour=2,
                      metrics_listen="127.0.0.1:%d" % port)
    srv.metrics_port = port
    key = 'postern_alarms_total{kind="login_networks"}'
    assert scrape(srv)[key] == 0
    for n in range(1, 4):  # three networks, over the limit of two
        c = srv.sub("587", source="127.0.%d.1" % n)
        assert c.cmd("AUTH PLAIN " + plain_b64(ALICE, ALICE_PW)).code == 235
        c.close()
    assert wait_for(lambda: scrape(srv)[key] == 1, 10)
    assert scrape(srv)['postern_alarms_total{kind="send_burst"}'] == 0
    assert scrape(srv)['postern_logins_total{result="success"}'] == 3
