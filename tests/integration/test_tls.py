"""TLS on every role (issue 3 item 1; THREATS.md T-01 to T-08): STARTTLS
(RFC 3207) and implicit TLS (RFC 8314), the CVE-2011-0411 injection
class, state reset after the handshake, TLS 1.2+ only, no renegotiation,
ALPN, SNI, handshake timeout, session tickets, and certificates reloaded
on SIGHUP. Real clients: Python's ssl and `openssl s_client`.
"""

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import ALICE, ALICE_PW, HOSTNAME
from helpers import (RawClient, make_self_signed, pem_to_der, plain_b64,
                     split_received, unfold, wait_for)

TLS_GO = b"220 2.0.0 Ready to start TLS\r\n"
SYNC = b"554 5.5.0 SMTP protocol synchronization error\r\n"
TLS_ACTIVE = b"554 5.5.1 TLS already active\r\n"
NO_ARGS = b"501 5.5.4 Syntax: no arguments allowed\r\n"
NEED_HELO = b"503 5.5.1 Send HELO/EHLO first\r\n"
ALICE_PLAIN = plain_b64(ALICE, ALICE_PW)

SMTP_REPLY_RE = re.compile(rb"(^|\r\n)\d{3}[ -]")


def openssl():
    exe = shutil.which("openssl")
    assert exe, "openssl is not installed"
    return exe


def s_client(args, stdin=b"QUIT\r\n", timeout=30):
    p = subprocess.run([openssl(), "s_client"] + args, input=stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def handshake_ok(out):
    m = re.search(r"Cipher is (\S+)", out)
    return bool(m) and m.group(1) != "(NONE)"


def plain_port(srv, kind):
    return srv.port if kind == "mx" else srv.sub_port(kind)


# --- T-01: STARTTLS injection (CVE-2011-0411) --------------------------------


def injection(srv, kind, tail, segments=1):
    """Send STARTTLS with `tail` behind it (one segment, or two sent back
    to back) and check that nothing of the tail is ever acted on: either
    554 5.5.0 and close, or 220 and then no reply before the server ends
    the session. Returns what happened."""
    c = RawClient(plain_port(srv, kind))
    c.greeting()
    c.expect_cmd("EHLO c.example", 250)
    if segments == 1:
        c.send(b"STARTTLS\r\n" + tail)
    else:
        c.send(b"STARTTLS\r\n", tail)
    r = c.reply()
    if r.raw == SYNC:
        assert c.wait_closed(5), "not closed after 554"
        assert c.trailing == b"", c.trailing
        c.close()
        return "refused"
    assert r.raw == TLS_GO, r
    assert not c.buf, "reply to injected plain text: %r" % c.buf
    try:
        c.start_tls(srv.tls_ctx())
    except (ssl.SSLError, OSError):
        c.close()
        return "handshake failed"
    got = c.pending(1.5)
    assert not SMTP_REPLY_RE.search(got), \
        "reply to injected command after the handshake: %r" % got
    # the issue: discard the bytes and end the session
    assert c.eof or c.wait_closed(5), "session not ended after injection"
    c.close()
    return "closed after handshake"


@pytest.mark.parametrize("kind", ["587", "2525", "mx"])
@pytest.mark.parametrize("tail", [
    b"EHLO injected\r\n",
    b"AUTH PLAIN " + ALICE_PLAIN.encode() + b"\r\n",
    b"EHLO x\r\nAUTH PLAIN " + ALICE_PLAIN.encode() + b"\r\n"
    b"MAIL FROM:<alice@local.test>\r\n",
    b"N",
])
def test_starttls_injection_one_segment(sub_server, kind, tail):
    start = len(sub_server.log())
    what = injection(sub_server, kind, tail)
    print(kind, what)
    time.sleep(0.2)
    text = sub_server.log()[start:]
    assert "auth-ok" not in text and "auth result" not in text, text
    assert "helo name=\"injected\"" not in text, text


@pytest.mark.parametrize("kind", ["587", "mx"])
def test_starttls_injection_two_segments(sub_server, kind):
    start = len(sub_server.log())
    injection(sub_server, kind, b"EHLO injected\r\n", segments=2)
    time.sleep(0.2)
    assert "helo name=\"injected\"" not in sub_server.log()[start:]


@pytest.mark.parametrize("kind", ["587", "2525", "mx"])
def test_starttls_fast_client_not_taken_for_injection(sub_server, kind):
    """A client that sends its first command right behind its TLS
    Finished (TCP_NODELAY, as Go's net package does by default) is not an
    injection: the bytes came through TLS. 20 tries, each must work."""
    bad = []
    for i in range(20):
        c = RawClient(plain_port(sub_server, kind))
        c.greeting()
        c.expect_cmd("EHLO c.example", 250)
        c.starttls(sub_server.tls_ctx(), settle=0)
        try:
            r = c.cmd("EHLO c.example")
            if r.code != 250:
                bad.append((i, r))
        except Exception as e:  # closed by the server
            bad.append((i, repr(e)))
        c.close()
    assert not bad, "%d of 20 failed: %s" % (len(bad), bad[:3])


# --- T-02: state after STARTTLS ---------------------------------------------


def test_mx_transaction_forgotten_after_starttls(sub_server):
    """T-02 #1 on the mx role."""
    c = sub_server.client()
    c.ehlo()
    c.expect_cmd("MAIL FROM:<s@example.org>", 250)
    c.starttls(sub_server.tls_ctx())
    r = c.cmd("RCPT TO:<alice@local.test>")
    assert r.code == 503 and r.enh == "5.5.1", r
    c.expect_cmd("EHLO c.example", 250)
    r = c.cmd("RCPT TO:<alice@local.test>")
    assert r.code == 503 and r.enh == "5.5.1", r  # the MAIL is gone
    c.close()


@pytest.mark.parametrize("kind", ["587", "2525"])
def test_submission_needs_ehlo_after_starttls(sub_server, kind):
    """T-02 #2."""
    c = sub_server.sub(kind, ehlo=False)
    assert c.cmd("MAIL FROM:<%s>" % ALICE).raw == NEED_HELO
    c.close()


def test_starttls_before_ehlo(sub_server):
    c = RawClient(sub_server.sub_port("587"))
    c.greeting()
    assert c.cmd("STARTTLS").raw == NEED_HELO
    c.close()


def test_received_names_the_ehlo_given_inside_tls(sub_server):
    c = RawClient(sub_server.sub_port("587"))
    c.greeting()
    c.expect_cmd("EHLO before.example", 250)
    c.starttls(sub_server.tls_ctx())
    c.expect_cmd("EHLO after.example", 250)
    c.expect_cmd("AUTH PLAIN " + ALICE_PLAIN, 235)
    c.expect_cmd("MAIL FROM:<%s>" % ALICE, 250)
    c.expect_cmd("RCPT TO:<carol@example.net>", 250)
    c.expect_cmd("DATA", 354)
    c.send(b"From: <alice@local.test>\r\nSubject: t02\r\n\r\nx\r\n.\r\n")
    r = c.reply()
    assert r.code == 250, r
    _, data = sub_server.queue_entry(r.queue_id)
    text = unfold(split_received(data)[0])
    assert text.startswith("Received: from after.example "), text
    assert "before.example" not in text
    c.close()


# --- T-03: STARTTLS misuse ---------------------------------------------------


@pytest.mark.parametrize("kind", ["587", "2525", "465"])
def test_starttls_inside_tls(sub_server, kind):
    c = sub_server.sub(kind)
    assert c.cmd("STARTTLS").raw == TLS_ACTIVE
    assert c.cmd("NOOP").code == 250
    c.close()


@pytest.mark.parametrize("kind", ["587", "2525", "mx"])
def test_starttls_with_argument(sub_server, kind):
    c = RawClient(plain_port(sub_server, kind))
    c.greeting()
    c.expect_cmd("EHLO c.example", 250)
    assert c.cmd("STARTTLS now").raw == NO_ARGS
    c.starttls(sub_server.tls_ctx())  # still possible
    c.close()


# --- T-04: protocol versions and ciphers -------------------------------------


@pytest.mark.parametrize("version", ["-tls1_1", "-tls1"])
@pytest.mark.parametrize("kind", ["587", "2525", "465", "mx"])
def test_old_tls_refused_openssl(sub_server, kind, version):
    port = plain_port(sub_server, kind) if kind != "465" else \
        sub_server.sub_port("465")
    args = ["-connect", "127.0.0.1:%d" % port, version,
            "-cipher", "DEFAULT@SECLEVEL=0"]
    if kind != "465":
        args += ["-starttls", "smtp"]
    rc, out = s_client(args)
    assert not handshake_ok(out), out
    assert rc != 0, out


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("kind", ["587", "465"])
def test_old_tls_refused_python(sub_server, kind):
    ctx = sub_server.tls_ctx(minimum=ssl.TLSVersion.TLSv1_1,
                             maximum=ssl.TLSVersion.TLSv1_1,
                             ciphers="DEFAULT:@SECLEVEL=0")
    with pytest.raises((ssl.SSLError, OSError)) as e:
        sub_server.sub(kind, ctx=ctx)
    if kind == "465":
        assert "protocol version" in str(e.value).lower(), e.value


@pytest.mark.parametrize("cipher", [
    "ECDHE-ECDSA-AES128-SHA",        # CBC
    "ECDHE-ECDSA-AES256-SHA384",     # CBC
    "DHE-RSA-AES128-GCM-SHA256",     # finite-field DH (docs/tls.md)
    "AES128-GCM-SHA256",             # static RSA key exchange
])
def test_weak_tls12_ciphers_refused(sub_server, cipher):
    rc, out = s_client(["-connect", "127.0.0.1:%d"
                        % sub_server.sub_port("587"), "-starttls", "smtp",
                        "-tls1_2", "-cipher", cipher])
    assert not handshake_ok(out), out


@pytest.mark.parametrize("kind", ["587", "465"])
def test_tls12_and_13_accepted(sub_server, kind):
    for ver in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = sub_server.tls_ctx(minimum=ver, maximum=ver)
        c = sub_server.sub(kind, ctx=ctx)
        assert c.sock.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                                    ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[ver]
        name = c.sock.cipher()[0]
        assert "GCM" in name or "CHACHA20" in name, name
        assert c.sock.compression() is None
        c.close()


def test_handshake_failures_logged_with_reason(make_server):
    """Issue item 1: handshake failures are logged with their reason,
    in the words of docs/tls.md."""
    srv = make_server(submission=True)
    port = srv.sub_port("465")
    s_client(["-connect", "127.0.0.1:%d" % port, "-tls1_1",
              "-cipher", "DEFAULT@SECLEVEL=0"])
    s_client(["-connect", "127.0.0.1:%d" % port, "-tls1_2",
              "-cipher", "DHE-RSA-AES128-GCM-SHA256"])
    s_client(["-connect", "127.0.0.1:%d" % port, "-alpn", "http/1.1"])
    s_client(["-connect", "127.0.0.1:%d" % port, "-servername", "bad_name"])
    assert srv.wait_log(lambda t: t.count("tls-failed") >= 4, 5), srv.log()
    lines = [ln for ln in srv.log().splitlines() if "tls-failed" in ln]
    text = "\n".join(lines)
    for reason in ("unsupported protocol", "no shared cipher",
                   "no application protocol", "invalid SNI host name"):
        assert reason in text, (reason, text)


# --- T-05: renegotiation and the handshake timeout ---------------------------


def test_renegotiation_refused(sub_server):
    p = subprocess.Popen(
        [openssl(), "s_client", "-connect",
         "127.0.0.1:%d" % sub_server.sub_port("465"), "-tls1_2"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)
    try:
        for data in (b"R\n", b"NOOP\r\n", None):
            time.sleep(1.0)
            try:
                if data is None:
                    p.stdin.close()
                else:
                    p.stdin.write(data)
                    p.stdin.flush()
            except (OSError, ValueError):  # s_client is gone
                pass
        p.wait(timeout=20)
        out = p.stdout.read().decode("utf-8", "replace")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
        p.stdout.close()
    assert "220 %s ESMTP" % HOSTNAME in out, out
    assert "RENEGOTIATING" in out, out
    after = out.split("RENEGOTIATING", 1)[1]
    assert "250 2.0.0 Ok" not in after, out
    assert "no renegotiation" in after, out


@pytest.mark.parametrize("kind", ["465", "587"])
def test_handshake_timeout(make_server, kind):
    """T-05 #3: a client that starts a handshake and stalls is closed at
    tls-handshake-timeout."""
    srv = make_server(submission=True, tls_handshake_timeout="2s")
    c = RawClient(srv.sub_port(kind))
    if kind == "587":
        c.greeting()
        c.expect_cmd("EHLO c.example", 250)
        c.expect_cmd("STARTTLS", 220)
    t = time.monotonic()
    c.send(b"\x16")  # one octet of a ClientHello
    assert c.wait_closed(10), "not closed"
    took = time.monotonic() - t
    assert 1.5 <= took <= 8, took
    c.close()
    assert srv.wait_log(lambda t: "tls-failed" in t, 3)


# --- T-06: no plain text after the TLS session ends -------------------------


@pytest.mark.parametrize("kind", ["587", "465"])
def test_no_plaintext_after_close_notify(sub_server, kind):
    c = sub_server.sub(kind)
    c.send(b"MAIL FROM:<>\nNO")
    try:
        raw = c.sock.unwrap()  # sends close_notify
    except (ssl.SSLError, OSError):
        raw = c.raw_sock
    try:
        raw.sendall(b"OP\r\nEHLO x\r\nSTARTTLS\r\n")
    except OSError:
        pass
    got = b""
    deadline = time.monotonic() + 5
    closed = False
    while time.monotonic() < deadline:
        raw.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            data = raw.recv(65536)
        except socket.timeout:
            break
        except OSError:
            closed = True
            break
        if not data:
            closed = True
            break
        got += data
    raw.close()
    assert closed, "server did not close after close_notify"
    assert not SMTP_REPLY_RE.search(got), got
    assert b"ESMTP" not in got and b"Ok" not in got, got


# --- T-07: SNI ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["bad_name", "x\\", "a..b", "-x.example",
                                  "x" * 64 + ".example"])
def test_invalid_sni_aborted(sub_server, name):
    rc, out = s_client(["-connect", "127.0.0.1:%d"
                        % sub_server.sub_port("465"), "-servername", name])
    assert not handshake_ok(out), out
    assert "unrecognized name" in out, out


def test_valid_sni_and_verification(sub_server):
    """The self-signed certificate verifies as its own trust anchor for
    the host name, on 465 and after STARTTLS (docs/tls.md)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(sub_server.cert)
    assert ctx.check_hostname
    c = RawClient(sub_server.sub_port("465"), tls=ctx,
                  server_hostname=HOSTNAME)
    c.greeting()
    c.close()
    c = RawClient(sub_server.sub_port("587"))
    c.greeting()
    c.expect_cmd("EHLO c.example", 250)
    c.starttls(ctx, server_hostname=HOSTNAME)
    c.expect_cmd("EHLO c.example", 250)
    c.close()
    with pytest.raises(ssl.SSLCertVerificationError):
        RawClient(sub_server.sub_port("465"), tls=ctx,
                  server_hostname="other.example")


def test_self_signed_files(sub_server):
    assert os.stat(sub_server.key).st_mode & 0o777 == 0o600
    mode = os.stat(sub_server.cert).st_mode
    assert mode & 0o077 in (0o044, 0o004, 0o040, 0), oct(mode)
    der = pem_to_der(sub_server.cert)
    c = RawClient(sub_server.sub_port("465"), tls=sub_server.tls_ctx())
    assert c.sock.getpeercert(binary_form=True) == der
    c.close()


# --- T-08: ALPN (ALPACA) -----------------------------------------------------


@pytest.mark.parametrize("alpn", [["http/1.1"], ["h2", "http/1.1"],
                                  ["imap"]])
@pytest.mark.parametrize("kind", ["465", "587", "2525"])
def test_alpn_other_protocol_refused(sub_server, kind, alpn):
    ctx = sub_server.tls_ctx(alpn=alpn)
    with pytest.raises((ssl.SSLError, OSError)):
        sub_server.sub(kind, ctx=ctx)


@pytest.mark.parametrize("kind", ["465", "587", "2525"])
def test_alpn_refusal_is_the_rfc7301_alert(sub_server, kind):
    """RFC 7301 3.2: the server MUST answer with a fatal
    no_application_protocol alert (docs/tls.md), on STARTTLS too."""
    ctx = sub_server.tls_ctx(alpn=["http/1.1"])
    with pytest.raises(ssl.SSLError) as e:
        sub_server.sub(kind, ctx=ctx)
    assert "NO APPLICATION PROTOCOL" in str(e.value).upper().replace(
        "_", " "), e.value


def test_alpn_openssl_http_refused(sub_server):
    rc, out = s_client(["-connect", "127.0.0.1:%d"
                        % sub_server.sub_port("465"), "-alpn", "http/1.1"])
    assert not handshake_ok(out), out
    assert "no application protocol" in out, out


@pytest.mark.parametrize("kind", ["465", "587"])
def test_alpn_smtp_selected(sub_server, kind):
    ctx = sub_server.tls_ctx(alpn=["http/1.1", "smtp"])
    c = sub_server.sub(kind, ctx=ctx, auth=(ALICE, ALICE_PW))
    assert c.sock.selected_alpn_protocol() == "smtp"
    c.close()


def test_http_over_465_closed_without_reflection(sub_server):
    """T-08 #2."""
    c = sub_server.sub("465", ehlo=False)
    c.send(b"POST / HTTP/1.1\r\nContent-Length: 20\r\n\r\n"
           b"<script>x</script>")
    r = c.reply()
    assert r.raw == b"221 2.7.0 Not an SMTP client, goodbye\r\n", r
    assert c.wait_closed(5)
    assert b"script" not in c.trailing
    c.close()


# --- session tickets ---------------------------------------------------------


@pytest.mark.parametrize("ver", ["TLSv1.2", "TLSv1.3"])
def test_session_tickets_resume_across_workers(sub_server, ver):
    v = getattr(ssl.TLSVersion, ver.replace(".", "_"))
    ctx = sub_server.tls_ctx(minimum=v, maximum=v)
    c = RawClient(sub_server.sub_port("465"), tls=ctx)
    c.greeting()  # a TLS 1.3 ticket comes after the handshake
    session = c.sock.session
    c.cmd("QUIT")
    c.close()
    assert session is not None and session.has_ticket
    reused = []
    for _ in range(6):  # 2 workers: some of these land on the other one
        s = socket.create_connection(("127.0.0.1",
                                      sub_server.sub_port("465")), 10)
        ss = ctx.wrap_socket(s, session=session)
        reused.append(ss.session_reused)
        ss.close()
    assert all(reused), reused


# --- SIGHUP reloads the certificates ----------------------------------------


def peer_der(srv, kind):
    ctx = srv.tls_ctx()
    ctx.verify_mode = ssl.CERT_NONE
    c = srv.sub(kind, ctx=ctx, ehlo=False)
    der = c.sock.getpeercert(binary_form=True)
    c.close()
    return der


def test_sighup_reloads_certificates(make_server, tmp_path):
    srv = make_server(submission=True)
    old = pem_to_der(srv.cert)
    assert peer_der(srv, "465") == old
    new = make_self_signed(str(tmp_path / "c.pem"), str(tmp_path / "k.pem"),
                           HOSTNAME)
    os.replace(str(tmp_path / "k.pem"), srv.key)
    os.replace(str(tmp_path / "c.pem"), srv.cert)
    start = len(srv.log())
    srv.signal(signal.SIGHUP)
    assert srv.wait_log(lambda t: "reloaded" in t, 10, start), srv.log()
    assert wait_for(lambda: peer_der(srv, "465") == new, 10)
    for kind in ("465", "587", "2525", "465", "587"):
        assert peer_der(srv, kind) == new, kind
    # and it still serves mail
    c = srv.sub("587", auth=(ALICE, ALICE_PW))
    c.close()


def test_sighup_with_bad_certificate_keeps_the_old(make_server, tmp_path):
    srv = make_server(submission=True)
    old = pem_to_der(srv.cert)
    make_self_signed(str(tmp_path / "c.pem"), str(tmp_path / "k.pem"),
                     HOSTNAME)
    os.replace(str(tmp_path / "c.pem"), srv.cert)  # key no longer matches
    start = len(srv.log())
    srv.signal(signal.SIGHUP)
    assert srv.wait_log(lambda t: "reload refused" in t, 10, start), \
        srv.log()[start:]
    assert srv.running()
    for kind in ("465", "587"):
        assert peer_der(srv, kind) == old
