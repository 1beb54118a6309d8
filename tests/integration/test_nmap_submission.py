"""What nmap's SMTP scripts see on the submission ports (THREATS.md R-01,
N-01, N-02, A-01): no AUTH before STARTTLS on 587 and 2525, not an open
relay, no user enumeration, on every port.

nmap runs its smtp scripts only on ports it takes for SMTP: a private
--datadir holds an nmap-services file naming our free ports `submission`
(587, 2525 stand-ins) and `smtps` (465: nmap then speaks TLS first).
"""

import shutil
import subprocess

import pytest

from test_nmap import script_output

SERVICE = {"587": "submission", "2525": "submission", "465": "smtps"}


def nmap(srv, tmp_path, kind, scripts, args=None):
    exe = shutil.which("nmap")
    assert exe, "nmap is not installed"
    port = srv.sub_port(kind)
    datadir = tmp_path / ("nmap-data-" + kind)
    datadir.mkdir(exist_ok=True)
    (datadir / "nmap-services").write_text(
        "%s\t%d/tcp\t0.5\n" % (SERVICE[kind], port))
    cmd = [exe, "-n", "-Pn", "-sT", "-p", str(port), "--datadir",
           str(datadir), "--script", scripts]
    if args:
        cmd += ["--script-args", args]
    cmd.append("127.0.0.1")
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=120, cwd=str(tmp_path))
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, out
    assert "%d/tcp open  %s" % (port, SERVICE[kind]) in out, out
    return out


@pytest.mark.parametrize("kind", ["587", "2525"])
def test_smtp_commands_no_auth_before_starttls(sub_server, tmp_path, kind):
    out = nmap(sub_server, tmp_path, kind, "smtp-commands")
    res = script_output(out, "smtp-commands")
    ehlo = res.split("Commands:")[0]
    assert "mx.local.test" in ehlo and "STARTTLS" in ehlo, res
    assert "AUTH" not in ehlo, res
    for kw in ("VRFY", "ETRN", "XCLIENT", "XFORWARD", "8BITMIME",
               "CHUNKING"):
        assert kw not in ehlo, (kw, res)
    assert "postern" not in res.lower()


def test_smtp_commands_on_465(sub_server, tmp_path):
    out = nmap(sub_server, tmp_path, "465", "smtp-commands")
    res = script_output(out, "smtp-commands")
    ehlo = res.split("Commands:")[0]
    assert "AUTH PLAIN LOGIN" in ehlo, res
    assert "STARTTLS" not in ehlo, res
    assert "postern" not in res.lower()


@pytest.mark.parametrize("args", [
    None,
    "smtp-open-relay.domain=local.test",
    "smtp-open-relay.ip=127.0.0.1,smtp-open-relay.domain=example.net",
])
@pytest.mark.parametrize("kind", ["587", "2525", "465"])
def test_smtp_open_relay(sub_server, tmp_path, kind, args):
    before = sub_server.queue_ids()
    out = nmap(sub_server, tmp_path, kind, "smtp-open-relay", args)
    res = script_output(out, "smtp-open-relay")
    assert "Server isn't an open relay, authentication needed" in res, out
    assert "is an open relay" not in res
    assert sub_server.queue_ids() == before


@pytest.mark.parametrize("kind", ["587", "2525", "465"])
def test_smtp_enum_users(sub_server, tmp_path, kind):
    users = tmp_path / "users.lst"
    users.write_text("alice\nbob\nsales\nroot\nnosuchuser\n")
    for methods in ("{RCPT,VRFY,EXPN}", "{VRFY}", "{EXPN}"):
        out = nmap(sub_server, tmp_path, kind, "smtp-enum-users",
                   "smtp-enum-users.domain=local.test,"
                   "smtp-enum-users.methods=%s,userdb=%s" % (methods, users))
        res = script_output(out, "smtp-enum-users")
        assert "alice" not in res and "bob" not in res, res
        assert ("authentication needed" in res
                or "Couldn't find any accounts" in res), res
