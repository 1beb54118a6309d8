"""`postern user add|passwd|del|alias|list` (issue 3 item 2,
docs/users.md): the password comes from standard input (or the terminal),
never from argv; edits are atomic and keep every other line byte for byte;
the running server picks the file up on SIGHUP, and keeps the old one when
the new one is bad.
"""

import os
import re
import signal

import pytest

from conftest import ALICE, ALICE_PW, BOB
from helpers import list_dir, plain_b64, read_file

AUTH_OK = b"235 2.7.0 Authentication successful\r\n"
AUTH_FAILED = b"535 5.7.8 Authentication credentials invalid\r\n"
SENDER_NOT_OWNED = b"553 5.7.1 Sender address rejected: not owned by user\r\n"

CAROL = "carol@local.test"
CAROL_PW = "carol-password-1"
CAROL_PW2 = "carol-password-2"


def login(srv, user, password, kind="587"):
    c = srv.sub(kind)
    r = c.cmd("AUTH PLAIN " + plain_b64(user, password)).raw
    c.close()
    return r


def user(srv, *args, stdin=None):
    return srv.cli("user", *args, stdin=stdin)


def users_lines(srv):
    return read_file(srv.users_path).decode().splitlines(True)


@pytest.fixture
def cli_server(make_server):
    """An unstarted submission server whose users file holds a comment, a
    CRLF line (bob, copied from the fixture file) and a blank line."""
    srv = make_server(submission=True, start=False)
    bob = [ln for ln in users_lines(srv) if ln.startswith(BOB + ":")][0]
    with open(srv.users_path, "w", newline="") as f:
        f.write("# staff of local.test\n" + bob.rstrip("\n") + "\r\n\n")
    return srv


def test_round_trip(cli_server):
    srv = cli_server
    keep = users_lines(srv)
    p = user(srv, "add", CAROL, "--stdin", stdin=CAROL_PW + "\n")
    assert p.returncode == 0, p.stderr
    assert p.stderr.strip() == "postern user: added %s" % CAROL, p.stderr
    assert os.stat(srv.users_path).st_mode & 0o777 == 0o600
    lines = users_lines(srv)
    assert lines[:3] == keep, lines  # other lines byte for byte
    carol = [ln for ln in lines if ln.startswith(CAROL + ":")]
    assert len(carol) == 1
    assert carol[0].startswith(CAROL + ":{ARGON2ID}$argon2id$v=19$"), carol
    assert CAROL_PW not in read_file(srv.users_path).decode()

    p = user(srv, "list")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == [BOB, CAROL], p.stdout
    assert "$" not in p.stdout and "{" not in p.stdout  # no hashes

    # passwd replaces only the hash
    old = carol[0]
    p = user(srv, "passwd", CAROL, "--stdin", stdin=CAROL_PW2 + "\r\n")
    assert p.returncode == 0, p.stderr
    lines = users_lines(srv)
    assert lines[:3] == keep
    new = [ln for ln in lines if ln.startswith(CAROL + ":")][0]
    assert new != old and new.split(":")[0] == CAROL

    # aliases
    p = user(srv, "alias", CAROL, "--add", "info@local.test")
    assert p.returncode == 0, p.stderr
    p = user(srv, "alias", CAROL, "--add", "press@local.test")
    assert p.returncode == 0, p.stderr
    assert user(srv, "list").stdout.splitlines() == [
        BOB, CAROL + "\tinfo@local.test,press@local.test"]
    line = [ln for ln in users_lines(srv) if ln.startswith(CAROL + ":")][0]
    assert line.rstrip("\n").endswith(
        "userdb_postern_aliases=info@local.test,press@local.test"), line
    assert line.split(":")[1] == new.split(":")[1].rstrip("\n")  # same hash
    p = user(srv, "alias", CAROL, "--del", "info@local.test")
    assert p.returncode == 0, p.stderr
    p = user(srv, "alias", CAROL, "--del", "info@local.test")
    assert p.returncode == 1, p  # not hers any more
    assert user(srv, "list").stdout.splitlines() == [
        BOB, CAROL + "\tpress@local.test"]

    # the server uses the file: new password, alias
    srv.start()
    assert login(srv, CAROL, CAROL_PW2) == AUTH_OK
    assert login(srv, CAROL, CAROL_PW) == AUTH_FAILED
    c = srv.sub("465", auth=(CAROL, CAROL_PW2))
    assert c.cmd("MAIL FROM:<press@local.test>").code == 250
    c.close()

    # del
    p = user(srv, "del", CAROL)
    assert p.returncode == 0, p.stderr
    assert users_lines(srv) == keep
    assert user(srv, "list").stdout.splitlines() == [BOB]
    p = user(srv, "del", CAROL)
    assert p.returncode == 1
    # no temporary file left behind
    assert [n for n in list_dir(srv.root) if ".tmp" in n] == []
    # the running server still knows carol until SIGHUP
    assert login(srv, CAROL, CAROL_PW2) == AUTH_OK
    start = len(srv.log())
    srv.signal(signal.SIGHUP)
    assert srv.wait_log(lambda t: "users-loaded count=1" in t, 10, start), \
        srv.log()[start:]
    assert login(srv, CAROL, CAROL_PW2) == AUTH_FAILED


@pytest.mark.parametrize("argv", [
    ["add", "dave@local.test", "secret-password"],
    ["add", "dave@local.test", "--stdin", "secret-password"],
    ["passwd", BOB, "secret-password"],
    ["add", "dave@local.test", "--password", "secret-password"],
    ["add", "dave@local.test", "--password=secret-password"],
])
def test_password_never_from_argv(cli_server, argv):
    before = read_file(cli_server.users_path)
    p = user(cli_server, *argv, stdin="secret-password\n")
    assert p.returncode != 0, p
    assert read_file(cli_server.users_path) == before


@pytest.mark.parametrize("argv,stdin,why", [
    (["add", CAROL, "--stdin"], "short\n", "at least 8"),
    (["add", CAROL, "--stdin"], "", None),
    (["add", BOB, "--stdin"], "a-long-password\n", None),
    (["add", "bad address", "--stdin"], "a-long-password\n", None),
    (["add", CAROL, "--stdin", "--alias", BOB], "a-long-password\n", None),
    (["add", CAROL, "--stdin", "--alias", CAROL], "a-long-password\n",
     None),
    (["passwd", CAROL, "--stdin"], "a-long-password\n", None),
    (["del", CAROL], None, None),
    (["alias", BOB, "--del", "x@local.test"], None, None),
    (["alias", CAROL, "--add", "x@local.test"], None, None),
    (["frobnicate"], None, None),
])
def test_refused_edits_leave_the_file(cli_server, argv, stdin, why):
    before = read_file(cli_server.users_path)
    p = user(cli_server, *argv, stdin=stdin)
    assert p.returncode == 1 or p.returncode == 2, p
    assert p.stderr.strip(), p
    if why:
        assert why in p.stderr, p.stderr
    assert read_file(cli_server.users_path) == before


def test_file_with_errors_is_not_edited(cli_server):
    with open(cli_server.users_path, "a") as f:
        f.write("x@local.test:{MD5}abcdef\n")
    before = read_file(cli_server.users_path)
    p = user(cli_server, "add", CAROL, "--stdin", stdin=CAROL_PW + "\n")
    assert p.returncode == 1, p
    assert re.search(r"users:4: unknown password scheme \{MD5\}", p.stderr), \
        p.stderr
    assert read_file(cli_server.users_path) == before


def test_symlinked_users_file_refused(cli_server):
    real = cli_server.users_path + ".real"
    os.rename(cli_server.users_path, real)
    os.symlink(real, cli_server.users_path)
    before = read_file(real)
    p = user(cli_server, "add", CAROL, "--stdin", stdin=CAROL_PW + "\n")
    assert p.returncode == 1, p
    assert read_file(real) == before
    assert os.path.islink(cli_server.users_path)


def test_sighup_reloads_users_and_refuses_a_bad_file(make_server):
    srv = make_server(submission=True)
    p = user(srv, "add", CAROL, "--stdin", stdin=CAROL_PW + "\n")
    assert p.returncode == 0, p.stderr
    assert login(srv, CAROL, CAROL_PW) == AUTH_FAILED  # not before SIGHUP
    start = len(srv.log())
    srv.signal(signal.SIGHUP)
    assert srv.wait_log(lambda t: "users-loaded count=3" in t, 10, start), \
        srv.log()[start:]
    for kind in ("587", "2525", "465"):
        assert login(srv, CAROL, CAROL_PW, kind) == AUTH_OK, kind
    # carol's address is a local mailbox now
    c = srv.sub("587", auth=(ALICE, ALICE_PW))
    c.expect_cmd("MAIL FROM:<%s>" % ALICE, 250)
    assert c.cmd("RCPT TO:<%s>" % CAROL).code == 250
    c.close()
    # a bad file is refused; the old users stay
    good = read_file(srv.users_path)
    with open(srv.users_path, "ab") as f:
        f.write(b"broken line\n")
    start = len(srv.log())
    srv.signal(signal.SIGHUP)
    assert srv.wait_log(lambda t: "guard users-kept" in t, 10, start), \
        srv.log()[start:]
    assert "users:4: invalid user address 'broken line'" in srv.log()[start:]
    assert srv.running()
    assert login(srv, CAROL, CAROL_PW) == AUTH_OK
    assert login(srv, ALICE, ALICE_PW) == AUTH_OK
    with open(srv.users_path, "wb") as f:
        f.write(good)
