"""What nmap's SMTP scripts see (THREATS R-01, N-01, N-02): not an open
relay, no user enumeration, no version, only the expected keywords.

nmap runs its smtp scripts only on ports it believes to be SMTP; a private
--datadir holding a one-line nmap-services file names our test port smtp
(nmap falls back to its own data directory for everything else)."""

import os
import shutil
import subprocess

import pytest


def nmap(server, tmp_path, scripts, args=None):
    exe = shutil.which("nmap")
    assert exe, "nmap is not installed"
    datadir = tmp_path / "nmap-data"
    datadir.mkdir(exist_ok=True)
    (datadir / "nmap-services").write_text("smtp\t%d/tcp\t0.5\n"
                                           % server.port)
    cmd = [exe, "-n", "-Pn", "-sT", "-p", str(server.port),
           "--datadir", str(datadir), "--script", scripts]
    if args:
        cmd += ["--script-args", args]
    cmd.append("127.0.0.1")
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=120, cwd=str(tmp_path))
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, out
    assert "%d/tcp open  smtp" % server.port in out, out
    return out


def script_output(out, name):
    """The lines of one script's result block ("|_name: ..." or
    "| name: \\n|   ...")."""
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(("| " + name + ":", "|_" + name + ":")):
            block = [line]
            if line.startswith("|_"):
                return "\n".join(block)
            for more in lines[i + 1:]:
                block.append(more)
                if more.startswith("|_"):
                    break
            return "\n".join(block)
    raise AssertionError("no %s output in:\n%s" % (name, out))


@pytest.mark.parametrize("args", [
    None,
    "smtp-open-relay.domain=local.test",
    "smtp-open-relay.ip=127.0.0.1,smtp-open-relay.domain=example.net",
])
def test_nmap_open_relay(server, tmp_path, args):
    out = nmap(server, tmp_path, "smtp-open-relay", args)
    res = script_output(out, "smtp-open-relay")
    assert "Server doesn't seem to be an open relay, all tests failed" \
        in res, out
    assert "is an open relay" not in res


def test_nmap_smtp_commands(server, tmp_path):
    out = nmap(server, tmp_path, "smtp-commands")
    res = script_output(out, "smtp-commands")
    assert "mx.local.test" in res, res
    for kw in ("PIPELINING", "SIZE 10485760", "8BITMIME",
               "ENHANCEDSTATUSCODES", "SMTPUTF8", "CHUNKING"):
        assert kw in res, (kw, res)
    for kw in ("AUTH", "STARTTLS", "VRFY", "ETRN", "XCLIENT", "XFORWARD",
               "DSN"):
        assert kw not in res.split("Commands:")[0], (kw, res)
    assert "postern" not in res.lower()


def test_nmap_enum_users_default(server, tmp_path):
    """RCPT then VRFY then EXPN over nmap's default user list: nothing
    found (none of those users exists; VRFY/EXPN say nothing)."""
    out = nmap(server, tmp_path, "smtp-enum-users",
               "smtp-enum-users.domain=local.test")
    res = script_output(out, "smtp-enum-users")
    assert "Couldn't find any accounts" in res, res


def test_nmap_enum_users_vrfy_expn_learn_nothing(server, tmp_path):
    """VRFY and EXPN reveal nothing even for users that exist."""
    users = tmp_path / "users.lst"
    users.write_text("alice\nbob\nroot\nnosuchuser\n")
    out = nmap(server, tmp_path, "smtp-enum-users",
               "smtp-enum-users.domain=local.test,"
               "smtp-enum-users.methods={VRFY,EXPN},userdb=%s" % users)
    res = script_output(out, "smtp-enum-users")
    assert "Couldn't find any accounts" in res, res
    assert "alice" not in res and "bob" not in res


def test_nmap_other_smtp_scripts_harmless(server, tmp_path):
    """The vulnerability probes run against us without effect."""
    out = nmap(server, tmp_path,
               "smtp-vuln-cve2010-4344,smtp-vuln-cve2011-1720,"
               "smtp-vuln-cve2011-1764,smtp-ntlm-info")
    assert "VULNERABLE" not in out.replace("NOT VULNERABLE", ""), out
    assert os.path.exists("/proc/%d" % server.pid)
    assert server.running()
