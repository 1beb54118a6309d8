"""contrib/prometheus/postern-rules.yml and contrib/grafana/postern.json
(issue 10 item 6): the rules are valid, each alert has `promtool test
rules` cases that make it fire and keep it quiet, and every metric the
rules and the dashboard name is one the server exports."""

import json
import os
import re
import subprocess
import urllib.request

import pytest
import yaml

from helpers import free_port

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
RULES = os.path.join(REPO, "contrib", "prometheus", "postern-rules.yml")
RULES_TEST = os.path.join(REPO, "contrib", "prometheus",
                          "postern-rules.test.yml")
DASHBOARD = os.path.join(REPO, "contrib", "grafana", "postern.json")
NAME = re.compile(r"\bpostern_[a-z_]+\b")
ALERTS = {"PosternBruteForce", "PosternAccountLocked", "PosternSendBurst",
          "PosternLoginNetworks", "PosternMailHeld", "PosternQueueGrowing",
          "PosternQueueOldMessage", "PosternDeliveryFailures",
          "PosternTLSHandshakeFailures", "PosternWorkerRestarts"}


def promtool(*args):
    return subprocess.run(["promtool"] + list(args), capture_output=True,
                          text=True, timeout=120, cwd=os.path.dirname(RULES))


def rules():
    with open(RULES) as f:
        return [r for g in yaml.safe_load(f)["groups"] for r in g["rules"]]


def dashboard_exprs():
    with open(DASHBOARD) as f:
        dash = json.load(f)
    return dash, [t["expr"] for p in dash["panels"] for t in p["targets"]]


def test_rules_are_valid():
    p = promtool("check", "rules", RULES)
    assert p.returncode == 0, p.stdout + p.stderr


def test_rules_unit_cases_pass():
    p = promtool("test", "rules", RULES_TEST)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "SUCCESS" in p.stdout


def test_every_alert_fires_and_stays_quiet_in_a_case():
    names = {r["alert"] for r in rules()}
    assert names == ALERTS
    with open(RULES_TEST) as f:
        cases = yaml.safe_load(f)["tests"]
    fired, quiet = set(), set()
    for case in cases:
        for t in case["alert_rule_test"]:
            (fired if t["exp_alerts"] else quiet).add(t["alertname"])
    assert fired == ALERTS, ALERTS - fired
    assert quiet == ALERTS, ALERTS - quiet


def test_dashboard_is_sound():
    dash, exprs = dashboard_exprs()
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    assert exprs and all(NAME.search(e) for e in exprs)
    for p in dash["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from conftest import Server, finish
    port = free_port()
    srv = Server(tmp_path_factory.mktemp("postern-contrib"),
                 metrics_listen="127.0.0.1:%d" % port)
    srv.start()
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                    timeout=10) as r:
            text = r.read().decode()
    finally:
        finish(srv)
    return {line.split("{")[0].split(" ")[0]
            for line in text.splitlines() if line and line[0] != "#"}


def test_rules_name_exported_metrics(exported):
    used = {n for r in rules() for n in NAME.findall(r["expr"])}
    assert used and used <= exported, used - exported


def test_dashboard_names_exported_metrics(exported):
    _, exprs = dashboard_exprs()
    used = {n for e in exprs for n in NAME.findall(e)}
    assert used and used <= exported, used - exported
    # and it shows every family the server has
    families = {re.sub(r"_(bucket|sum|count)$", "", n) for n in exported}
    shown = {re.sub(r"_(bucket|sum|count)$", "", n) for n in used}
    assert families <= shown, families - shown
