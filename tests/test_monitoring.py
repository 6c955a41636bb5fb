"""Monitoring: the alert rules, the Grafana dashboard and the Compose deployment.

- promtool checks the rules, runs their unit tests and checks the Prometheus config;
- every metric an alert or a dashboard panel uses is one the gateway exports (scraped from
  a running gateway, and declared in scrubgate.proxy.metrics.REGISTRY);
- the dashboard uses the provisioned datasource; the Compose file mounts what exists.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from scrubgate.proxy.metrics import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
PROM_DIR = DEPLOY / "prometheus"
ALERTS = PROM_DIR / "alerts.yml"
ALERTS_TEST = PROM_DIR / "alerts_test.yml"
PROM_CONFIG = PROM_DIR / "prometheus.yml"
GRAFANA_DIR = DEPLOY / "grafana"
DASHBOARD = GRAFANA_DIR / "scrubgate-dashboard.json"
DATASOURCES = GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = GRAFANA_DIR / "provisioning" / "dashboards" / "scrubgate.yml"
COMPOSE = DEPLOY / "compose" / "docker-compose.yml"

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (Debian package `prometheus`; "
                             "scripts/setup.sh installs it for the tests)")

JOB = 'job="scrubgate"'
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# Series Prometheus makes itself, not the gateway.
PROMETHEUS_SERIES = {"up", "ALERTS", "ALERTS_FOR_STATE"}
# Names of metrics in an expression: the gateway's own and prometheus_client's collectors.
METRIC_NAME = re.compile(r"\b((?:scrubgate|process|python)_[a-zA-Z0-9_]*[a-zA-Z0-9])\b")
# Grafana's variables, replaced by something PromQL parses.
GRAFANA_VARS = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h",
                "$instance": ".*", "$service": ".*"}


def promtool(*args: str, cwd: Path | None = None) -> str:
    proc = subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"promtool {' '.join(args)} failed ({proc.returncode}):\n{out}"
    return out


def load_yaml(path: Path):
    return yaml.safe_load(path.read_text())


def alert_rules() -> list[dict]:
    return [r for g in load_yaml(ALERTS)["groups"] for r in g["rules"] if "alert" in r]


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def all_panels(panels: list[dict]):
    for p in panels:
        yield p
        yield from all_panels(p.get("panels", []))


def dashboard_exprs(d: dict) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target, annotation query and template variable."""
    out = []
    for p in all_panels(d["panels"]):
        for t in p.get("targets", []):
            out.append((f"panel {p['title']!r} {t.get('refId')}", t["expr"]))
    for a in d.get("annotations", {}).get("list", []):
        if a.get("expr"):
            out.append((f"annotation {a['name']!r}", a["expr"]))
    for v in d.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.fullmatch(r"label_values\((.*),\s*\w+\)", q)
            out.append((f"variable {v['name']!r}", m.group(1) if m else q))
    return out


def promql(expr: str) -> str:
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr}"
    return expr


# ------------------------------------------------------------------ exported names

def registry_names() -> dict[str, str]:
    """Sample names the gateway's registry can export -> metric type."""
    names = {}
    for family in REGISTRY.collect():
        if family.type == "counter":
            names[family.name + "_total"] = "counter"
        elif family.type == "histogram":
            names[family.name] = "histogram"
            names.update({family.name + s: "histogram" for s in HISTOGRAM_SUFFIXES})
        else:
            names[family.name] = family.type
        names.update({s.name: names.get(s.name, family.type) for s in family.samples})
    return names


def scraped_names(text: str) -> dict[str, str]:
    """Sample names in a /metrics page, from its # TYPE lines (present even before any sample)."""
    names = {}
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        names[name] = kind
        if kind == "histogram":
            names.update({name + s: kind for s in HISTOGRAM_SUFFIXES})
    for name in re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", text, re.M):
        names.setdefault(name, "sample")
    return names


def used_names(exprs) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for where, expr in exprs:
        for name in METRIC_NAME.findall(expr):
            out.setdefault(name, []).append(where)
    return out


def family(name: str, exported: dict[str, str]) -> str:
    """The metric a sample name belongs to (a histogram's _bucket/_sum/_count -> the histogram)."""
    for suffix in HISTOGRAM_SUFFIXES:
        base = name.removesuffix(suffix)
        if base != name and exported.get(base) == "histogram":
            return base
    return name


# ====================================================================== promtool

@needs_promtool
def test_alert_rules_are_valid():
    out = promtool("check", "rules", str(ALERTS))
    assert "SUCCESS" in out


@needs_promtool
def test_alert_rules_unit_tests_pass():
    out = promtool("test", "rules", str(ALERTS_TEST))
    assert "SUCCESS" in out


@needs_promtool
def test_prometheus_config_is_valid(tmp_path):
    """The config and the rules as Compose mounts them: side by side in one directory."""
    cfg = load_yaml(PROM_CONFIG)
    for rule_file in cfg["rule_files"]:
        assert not Path(rule_file).is_absolute(), "rule_files must be relative to prometheus.yml"
        assert (PROM_DIR / rule_file).is_file(), f"rule file {rule_file} missing next to prometheus.yml"
        shutil.copy(PROM_DIR / rule_file, tmp_path / rule_file)
    shutil.copy(PROM_CONFIG, tmp_path / "prometheus.yml")
    out = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert f"SUCCESS: {len(cfg['rule_files'])} rule files found" in out
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    targets = [t for sc in jobs["scrubgate"]["static_configs"] for t in sc["targets"]]
    assert targets == ["scrubgate:9464"]
    assert jobs["scrubgate"].get("metrics_path", "/metrics") == "/metrics"


@needs_promtool
def test_dashboard_queries_parse(tmp_path):
    """Every dashboard query, with Grafana's variables filled in, is valid PromQL."""
    rules = [{"record": f"scrubgate_dashboard:query_{i}", "expr": promql(expr)}
             for i, (_, expr) in enumerate(dashboard_exprs(dashboard()))]
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    out = promtool("check", "rules", str(path))
    assert f"SUCCESS: {len(rules)} rules found" in out


# ================================================================== alert rules

def test_alerts_have_severity_annotations_and_job():
    rules = alert_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names)), "duplicate alert names"
    expected = {"ScrubgateDown", "SanitiserErrorsRising", "SanitiserTimeouts", "BlockSpike",
                "AddedLatencyP99High", "WorkerSaturation", "PolicyReloadFailed", "FailOpenForwarding"}
    assert expected <= set(names)
    for r in rules:
        assert r["labels"]["severity"] in {"critical", "warning"}, r["alert"]
        for key in ("summary", "description", "runbook"):
            assert r["annotations"].get(key, "").strip(), f"{r['alert']}: no {key} annotation"
        # every selector of a gateway series names the scrubgate job
        selectors = re.findall(r"\b((?:scrubgate|process)_\w+|up)\b(\{[^}]*\})?", r["expr"])
        assert selectors, r["alert"]
        for name, labels in selectors:
            assert JOB in labels, f"{r['alert']}: {name} without {JOB}"


def test_every_alert_has_firing_and_quiet_tests():
    tests = load_yaml(ALERTS_TEST)
    assert tests["rule_files"] == ["alerts.yml"]
    fires, quiet = set(), set()
    for group in tests["tests"]:
        for case in group.get("alert_rule_test", []):
            (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = {r["alert"] for r in alert_rules()}
    assert names - fires == set(), "alerts never tested firing"
    assert names - quiet == set(), "alerts never tested staying quiet"
    assert (fires | quiet) - names == set(), "tests for alerts that do not exist"


# ================================================================ metric names

def test_metric_names_exist(gateway):
    """Every metric used by an alert or a panel is exported by the running gateway and the registry."""
    scraped = scraped_names(gateway.metrics())
    declared = registry_names()
    alerts = [(f"alert {r['alert']}", r["expr"]) for r in alert_rules()]
    panels = dashboard_exprs(dashboard())
    used = used_names(alerts + panels)
    assert any(n.startswith("scrubgate_") for n in used)
    missing_scraped = {n: w for n, w in used.items() if family(n, scraped) not in scraped}
    missing_declared = {n: w for n, w in used.items()
                        if n.startswith("scrubgate_") and family(n, declared) not in declared}
    assert not missing_scraped, f"not on the gateway's /metrics: {missing_scraped}"
    assert not missing_declared, f"not in scrubgate.proxy.metrics.REGISTRY: {missing_declared}"
    # and the other way round: the dashboard shows every scrubgate metric
    on_dashboard = {family(n, declared) for n in used_names(panels)}
    exported = {family(n, declared) for n in declared if n.startswith("scrubgate_")
                and not n.endswith("_created")}
    assert exported - on_dashboard == set(), "scrubgate metrics missing from the dashboard"


def test_histograms_used_with_le_buckets():
    """histogram_quantile() gets a histogram's _bucket series, summed by le."""
    declared = registry_names()
    exprs = [r["expr"] for r in alert_rules()] + [e for _, e in dashboard_exprs(dashboard())]
    for expr in exprs:
        for name in METRIC_NAME.findall(expr):
            if declared.get(name) == "histogram" and name == family(name, declared):
                pytest.fail(f"histogram {name} used without _bucket/_sum/_count in {expr}")
        if "histogram_quantile" in expr:
            assert "_bucket" in expr and re.search(r"by \([^)]*\ble\b", expr), expr


# ==================================================================== dashboard

def provisioned_datasource_uids() -> set[str]:
    return {d["uid"] for d in load_yaml(DATASOURCES)["datasources"]}


def test_dashboard_uses_provisioned_datasource():
    d = dashboard()
    assert d["uid"] == "scrubgate" and d["title"] == "scrubgate"
    assert d["schemaVersion"] >= 36
    assert "${DS_" not in DASHBOARD.read_text() and "__inputs" not in d
    uids = provisioned_datasource_uids()
    assert uids == {"prometheus"}

    def check(where: str, ds) -> None:
        assert isinstance(ds, dict) and ds.get("uid") in uids, f"{where}: datasource {ds!r}"

    panels = list(all_panels(d["panels"]))
    assert len([p for p in panels if p["type"] != "row"]) >= 15
    for p in panels:
        if p["type"] == "row":
            continue
        check(f"panel {p['title']!r}", p.get("datasource"))
        assert p.get("targets"), f"panel {p['title']!r} has no query"
        for t in p["targets"]:
            check(f"panel {p['title']!r} target {t.get('refId')}", t.get("datasource", p["datasource"]))
    for v in d["templating"]["list"]:
        if v["type"] == "query":
            check(f"variable {v['name']}", v["datasource"])
    for a in d["annotations"]["list"]:
        if not a.get("builtIn"):
            check(f"annotation {a['name']}", a["datasource"])


def test_dashboard_layout():
    panels = list(all_panels(dashboard()["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    cells = set()
    for p in panels:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not area & cells, f"panel {p['title']!r} overlaps another"
        cells |= area


def test_dashboard_panels_cover_the_brief():
    titles = {p["title"] for p in all_panels(dashboard()["panels"])}
    exprs = " ".join(e for _, e in dashboard_exprs(dashboard()))
    for needed in ("Policy in force", "Build", "Added latency", "Worker saturation", "Errors by stage"):
        assert needed in titles
    for needed in ("by (service, action)", "by (content, action)", "by (reason)", "by (kind)",
                   "by (source)", "by (field)", "by (direction)", "by (stage)",
                   "histogram_quantile(0.99", "scrubgate_queue_depth"):
        assert needed in exprs, needed


def test_grafana_provisioning():
    ds = load_yaml(DATASOURCES)
    assert ds["apiVersion"] == 1
    (prom,) = ds["datasources"]
    assert prom["type"] == "prometheus" and prom["url"] == "http://prometheus:9090"
    providers = load_yaml(DASHBOARD_PROVIDERS)
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"] == "/etc/grafana/dashboards"


# ====================================================================== compose

def compose() -> dict:
    return load_yaml(COMPOSE)


def bind_mounts(service: dict) -> dict[str, Path]:
    """container path -> host path for the service's bind mounts (relative to the compose file)."""
    out = {}
    for v in service.get("volumes", []):
        src, dst = v.split(":")[:2]
        if src.startswith((".", "/")):
            out[dst] = (COMPOSE.parent / src).resolve()
    return out


def named_volumes(service: dict) -> dict[str, str]:
    out = {}
    for v in service.get("volumes", []):
        src, dst = v.split(":")[:2]
        if not src.startswith((".", "/")):
            out[dst] = src
    return out


def test_compose_services_and_files():
    c = compose()
    assert {"scrubgate", "prometheus", "grafana"} <= set(c["services"])
    for name, service in c["services"].items():
        for dst, src in bind_mounts(service).items():
            assert src.exists(), f"{name}: {src} (mounted at {dst}) does not exist"
        for dst, vol in named_volumes(service).items():
            assert vol in c.get("volumes", {}), f"{name}: volume {vol} not declared"
        image = service.get("image", "")
        if "build" not in service:
            assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", image), f"{name}: image {image!r} not pinned"


def test_compose_scrubgate_service():
    gw = compose()["services"]["scrubgate"]
    context = (COMPOSE.parent / gw["build"]["context"]).resolve()
    assert context == ROOT
    dockerfile = (context / gw["build"].get("dockerfile", "Dockerfile")).read_text()
    assert {"${SCRUBGATE_PROXY_BIND:-127.0.0.1}:8080:8080", "127.0.0.1:9464:9464"} <= set(gw["ports"])
    # the confdir (CA + DICOM secret) is a named volume, as the Dockerfile declares
    assert 'VOLUME ["/var/lib/scrubgate"]' in dockerfile
    assert "/var/lib/scrubgate" in named_volumes(gw)
    cmd = gw.get("command", [])
    assert cmd[cmd.index("--confdir") + 1] == "/var/lib/scrubgate"
    assert cmd[cmd.index("--metrics-host") + 1] == "0.0.0.0"
    assert cmd[cmd.index("--listen-host") + 1] == "0.0.0.0"
    assert "healthcheck" in gw or "HEALTHCHECK" in dockerfile


def test_compose_prometheus_mounts_config_and_rules():
    prom = compose()["services"]["prometheus"]
    mounts = bind_mounts(prom)
    config_arg = next(a for a in prom["command"] if a.startswith("--config.file="))
    config_path = config_arg.split("=", 1)[1]
    assert mounts[config_path] == PROM_CONFIG
    for rule_file in load_yaml(PROM_CONFIG)["rule_files"]:
        target = str(Path(config_path).parent / rule_file)
        assert mounts.get(target) == (PROM_DIR / rule_file).resolve(), f"{rule_file} not mounted at {target}"
    assert ALERTS in mounts.values()


def test_compose_grafana_mounts_provisioning_and_dashboard():
    graf = compose()["services"]["grafana"]
    mounts = bind_mounts(graf)
    assert mounts["/etc/grafana/provisioning"] == GRAFANA_DIR / "provisioning"
    dash_dir = load_yaml(DASHBOARD_PROVIDERS)["providers"][0]["options"]["path"]
    dashboards = {dst: src for dst, src in mounts.items() if src == DASHBOARD}
    assert dashboards, "dashboard JSON not mounted"
    assert all(dst.startswith(dash_dir + "/") and dst.endswith(".json") for dst in dashboards)
    env = graf["environment"]
    home = env.get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    assert home is None or home in dashboards
    assert "${GRAFANA_BIND:-127.0.0.1}:3000:3000" in graf["ports"]
    assert env.get("GF_AUTH_ANONYMOUS_ENABLED") == "false"  # nobody views without signing in


def test_compose_is_not_an_open_proxy_by_default():
    """Every published port binds loopback unless the admin names an internal address;
    proxy authentication is one variable away and documented."""
    c = compose()
    for name, service in c["services"].items():
        for port in service.get("ports", []):
            host = str(port).rsplit(":", 2)[0] if str(port).count(":") >= 2 else ""
            assert host and (host.startswith("127.0.0.1") or host.endswith(":-127.0.0.1}")), \
                f"{name} publishes {port} on every interface"
    cmd = c["services"]["scrubgate"]["command"]
    assert "proxyauth=${SCRUBGATE_PROXYAUTH:-}" in cmd
    readme = (COMPOSE.parent / "README.md").read_text()
    assert "open proxy" in readme and "SCRUBGATE_PROXYAUTH" in readme and "SCRUBGATE_PROXY_BIND" in readme
