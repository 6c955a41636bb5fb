"""The deployment files in deploy/: Kubernetes manifests, systemd unit, firewall rules, CA guide.

- every Kubernetes manifest against the API schemas (kubernetes-validate, strict: unknown
  fields fail), the ServiceMonitor (a CRD without a bundled schema) by hand;
- that the pieces fit: selectors match the pod labels, named ports exist, the HPA
  targets the Deployment, the container's arguments parse with the real CLI and
  point at the mounted ConfigMap, Secret and writable confdir, the ConfigMap holds
  policies/ byte for byte and loads as a policy;
- the init container's script, run for real against a CA made with deploy/CA.md's own
  commands: mitmproxy then mints a leaf certificate that openssl verifies; the
  secret.yaml placeholders are refused;
- the systemd unit with `systemd-analyze verify` and `security --offline`, the
  logrotate file with `logrotate -d`, nftables.conf with `nft -c`, iptables.sh with
  `sh -n`, shellcheck and a dry run. Each tool check skips when the tool is missing.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scrubgate.cli import build_parser
from scrubgate.demo import stop_process
from scrubgate.keys import load_secret
from scrubgate.policy import Policy

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
SYSTEMD = DEPLOY / "systemd"
TRANSPARENT = DEPLOY / "transparent"
VENV_BIN = Path(sys.executable).parent

kubernetes_validate = pytest.importorskip("kubernetes_validate")
K8S_VERSION = kubernetes_validate.latest_version()

POD_LABELS_KEYS = ("app.kubernetes.io/name", "app.kubernetes.io/component")
RESTRICTED_UID = 10001  # the Dockerfile's `USER 10001:10001`


# -- loading ---------------------------------------------------------------------------------

def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def _manifests() -> list[tuple[str, int, dict]]:
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        for i, doc in enumerate(_docs(path)):
            out.append((path.name, i, doc))
    return out


MANIFESTS = _manifests()


def _one(kind: str, name: str | None = None) -> dict:
    found = [d for _, _, d in MANIFESTS if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def _deployment() -> dict:
    return _one("Deployment", "scrubgate")


def _pod_spec() -> dict:
    return _deployment()["spec"]["template"]["spec"]


def _pod_labels() -> dict:
    return _deployment()["spec"]["template"]["metadata"]["labels"]


def _container(name: str = "scrubgate") -> dict:
    return next(c for c in _pod_spec()["containers"] if c["name"] == name)


def _init_container(name: str = "ca-setup") -> dict:
    return next(c for c in _pod_spec()["initContainers"] if c["name"] == name)


def _matches(selector: dict, labels: dict) -> bool:
    """A Kubernetes label selector (matchLabels, or a plain map for Services) against labels."""
    match = selector.get("matchLabels", selector if "matchExpressions" not in selector else {})
    assert not selector.get("matchExpressions"), "matchExpressions: extend this helper"
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


def _arg(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def _parse_run_args(args: list[str]):
    return build_parser().parse_args(args)


# -- schemas ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name,index,doc", MANIFESTS, ids=[f"{n}#{i}:{d['kind']}" for n, i, d in MANIFESTS])
def test_manifest_validates_against_the_api_schema(name, index, doc):
    if doc["kind"] == "Kustomization":
        pytest.skip("kustomize's own file: checked in test_kustomization_lists_the_manifests")
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        assert doc["kind"] == "ServiceMonitor", f"{name}: no schema for {doc['kind']} {doc['apiVersion']}"
        pytest.skip("CRD without a bundled schema: checked in test_servicemonitor_selects_the_metrics_port")
    except kubernetes_validate.ValidationError as e:
        path = ".".join(str(p) for p in e.path)
        pytest.fail(f"{name}#{index} ({doc['kind']}) against Kubernetes {e.version}: {path}: {e.message}")


def test_strict_validation_catches_a_misspelt_field():
    """The schema check is real: one typo in the Deployment fails it."""
    bad = yaml.safe_load(yaml.safe_dump(_deployment()))
    container = bad["spec"]["template"]["spec"]["containers"][0]
    container["livenesProbe"] = container.pop("livenessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def test_every_resource_lives_in_the_scrubgate_namespace():
    for name, _, doc in MANIFESTS:
        if doc["kind"] in ("Kustomization", "Namespace"):
            continue
        assert doc["metadata"].get("namespace") == "scrubgate", name
    ns = _one("Namespace")
    assert ns["metadata"]["name"] == "scrubgate"
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_kustomization_lists_the_manifests():
    kust = _docs(K8S / "kustomization.yaml")[0]
    assert kust["kind"] == "Kustomization" and kust["namespace"] == "scrubgate"
    listed = kust["resources"]
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    # secret.yaml is a template with placeholders: applying it would overwrite the real Secret.
    assert "secret.yaml" not in listed
    assert set(listed) == files - {"secret.yaml"}, "every manifest but the Secret template is listed"
    assert listed.index("namespace.yaml") == 0
    image = _container()["image"]
    assert any(image.startswith(i["name"] + ":") for i in kust["images"])
    assert _init_container()["image"] == image


# -- the Deployment --------------------------------------------------------------------------

def test_deployment_probes_hit_health_and_readiness_on_the_metrics_port():
    c = _container()
    metrics_port = next(p for p in c["ports"] if p["name"] == "metrics")
    args = _parse_run_args(c["args"])
    assert metrics_port["containerPort"] == args.metrics_port == 9464
    assert args.metrics_host == "0.0.0.0"  # kubelet probes come from the node
    for probe, path in (("livenessProbe", "/healthz"), ("startupProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = c[probe]["httpGet"]
        assert get["path"] == path, probe
        assert get["port"] in ("metrics", 9464), probe
    proxy_port = next(p for p in c["ports"] if p["name"] == "proxy")
    assert proxy_port["containerPort"] == args.listen_port == 8080 and args.listen_host == "0.0.0.0"


def test_deployment_replicas_resources_and_spread():
    d = _deployment()
    assert d["spec"]["replicas"] == 2
    assert _matches(d["spec"]["selector"], _pod_labels())
    assert all(k in d["spec"]["selector"]["matchLabels"] for k in POD_LABELS_KEYS)
    res = _container()["resources"]
    for part in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(res[part]), part
    assert res["requests"]["cpu"] == "1" and res["limits"]["cpu"] == "2"
    # --workers matches the CPU limit: the default would be the node's CPU count.
    args = _parse_run_args(_container()["args"])
    assert args.workers == int(res["limits"]["cpu"])
    spec = _pod_spec()
    for tsc in spec["topologySpreadConstraints"]:
        assert _matches(tsc["labelSelector"], _pod_labels())
    for term in spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]:
        assert _matches(term["podAffinityTerm"]["labelSelector"], _pod_labels())
    assert spec["automountServiceAccountToken"] is False


@pytest.mark.parametrize("which", ["ca-setup", "scrubgate"])
def test_containers_run_restricted(which):
    pod = _pod_spec()["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] == RESTRICTED_UID
    assert pod["seccompProfile"]["type"] == "RuntimeDefault"
    c = _init_container() if which == "ca-setup" else _container()
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True and sc.get("runAsUser", RESTRICTED_UID) == RESTRICTED_UID
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add")
    assert sc["seccompProfile"]["type"] == "RuntimeDefault"
    assert not sc.get("privileged")
    assert {"requests", "limits"} <= set(c["resources"])
    # Nothing the restricted Pod Security Standard forbids.
    spec = _pod_spec()
    assert not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
    assert not any("hostPath" in v for v in spec["volumes"])


def _mounts(container: dict) -> dict[str, dict]:
    """mountPath -> volume."""
    volumes = {v["name"]: v for v in _pod_spec()["volumes"]}
    return {m["mountPath"]: {**volumes[m["name"]], "readOnly": m.get("readOnly", False)}
            for m in container["volumeMounts"]}


def _volume_at(container: dict, path: str) -> tuple[str, dict]:
    """The mount that holds path: (path inside the mount, volume)."""
    best = max((m for m in _mounts(container) if path == m or path.startswith(m.rstrip("/") + "/")),
               key=len, default=None)
    assert best is not None, f"{path} is on the read-only root filesystem"
    return path[len(best):].lstrip("/"), _mounts(container)[best]


def test_container_args_parse_and_point_at_the_mounted_files():
    c = _container()
    args = _parse_run_args(c["args"])
    assert args.command == "run"
    assert args.audit_log == "-"
    assert args.mode is None  # regular proxy
    # The policy and its catalogue: the ConfigMap, mounted whole (no subPath), so
    # kubelet's updates reach the gateway's reload.
    rel, vol = _volume_at(c, args.policy)
    assert vol["configMap"]["name"] == "scrubgate-policy" and vol["readOnly"]
    assert not any(m.get("subPath") for m in c["volumeMounts"])
    cm = _one("ConfigMap", "scrubgate-policy")
    policy = yaml.safe_load(cm["data"][rel])
    assert policy["catalogue"] in cm["data"], "the catalogue sits next to the policy"
    # The UID key: read from the Secret.
    rel, vol = _volume_at(c, args.secret_file)
    assert vol["secret"]["secretName"] == "scrubgate" and vol["readOnly"]
    assert {i["path"]: i["key"] for i in vol["secret"]["items"]}[rel] == "scrubgate-secret"
    assert "mitmproxy-ca.pem" not in {i["key"] for i in vol["secret"]["items"]}, "CA key: init container only"
    # The confdir: a writable emptyDir (mitmproxy writes its dhparam file), in memory,
    # filled by the init container.
    rel, vol = _volume_at(c, args.confdir)
    assert rel == "" and "emptyDir" in vol and not vol["readOnly"]
    assert vol["emptyDir"].get("medium") == "Memory"
    init = _init_container()
    env = {e["name"]: e["value"] for e in init["env"]}
    assert env["SCRUBGATE_CONFDIR"] == args.confdir
    _, init_vol = _volume_at(init, args.confdir)
    assert init_vol["name"] == vol["name"] and not init_vol["readOnly"]
    _, src = _volume_at(init, env["SCRUBGATE_CA_SOURCE"] + "/mitmproxy-ca.pem")
    assert src["secret"]["secretName"] == "scrubgate"
    # /tmp is writable (the worker pool's forkserver socket).
    _, tmp = _volume_at(c, "/tmp/x")
    assert "emptyDir" in tmp
    assert {e["name"]: e["value"] for e in c["env"]}["TMPDIR"] == "/tmp"


def test_configmap_holds_the_policies_byte_for_byte(tmp_path):
    cm = _one("ConfigMap", "scrubgate-policy")
    for key, src in (("default.yaml", "default.yaml"), ("services.yaml", "services.yaml")):
        assert cm["data"][key] == (ROOT / "policies" / src).read_text(encoding="utf-8"), (
            f"configmap.yaml is stale: run python deploy/kubernetes/make_configmap.py")
    r = subprocess.run([sys.executable, str(K8S / "make_configmap.py"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # And it loads as the gateway would load it from the mount.
    for key, text in cm["data"].items():
        (tmp_path / key).write_text(text, encoding="utf-8")
    policy = Policy.load(tmp_path / "default.yaml")
    assert policy.name == "default"


# -- Services, HPA, PDB, NetworkPolicy, ServiceMonitor ----------------------------------------

def test_services_select_the_pods_and_name_their_ports():
    ports = {p["name"]: p["containerPort"] for p in _container()["ports"]}
    proxy, metrics = _one("Service", "scrubgate"), _one("Service", "scrubgate-metrics")
    for svc in (proxy, metrics):
        assert _matches(svc["spec"]["selector"], _pod_labels())
        for p in svc["spec"]["ports"]:
            assert p["targetPort"] in ports, p
            assert p["port"] == ports[p["targetPort"]]
    assert [p["name"] for p in proxy["spec"]["ports"]] == ["proxy"]
    assert [p["name"] for p in metrics["spec"]["ports"]] == ["metrics"]
    assert metrics["spec"]["type"] == "ClusterIP"  # metrics never on the load balancer
    assert proxy["spec"].get("externalTrafficPolicy") == "Local"  # client addresses for audit and ipBlock


def test_hpa_scales_the_deployment_on_cpu():
    hpa = _one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    ref = hpa["spec"]["scaleTargetRef"]
    d = _deployment()
    assert (ref["apiVersion"], ref["kind"], ref["name"]) == (d["apiVersion"], d["kind"], d["metadata"]["name"])
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] == 10
    cpu = next(m["resource"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource")
    assert cpu["name"] == "cpu" and cpu["target"] == {"type": "Utilization", "averageUtilization": 70}
    assert hpa["spec"]["minReplicas"] <= d["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]


def test_pdb_selects_the_pods():
    pdb = _one("PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert _matches(pdb["spec"]["selector"], _pod_labels())


def test_networkpolicy_selects_the_pods_and_opens_only_what_is_needed():
    np = _one("NetworkPolicy")
    assert _matches(np["spec"]["podSelector"], _pod_labels())
    assert set(np["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    ports = {p["name"]: p["containerPort"] for p in _container()["ports"]}
    ingress = {}
    for rule in np["spec"]["ingress"]:
        for p in rule["ports"]:
            assert p["port"] in ports or p["port"] in ports.values(), p
            ingress[p["port"]] = rule["from"]
    assert set(ingress) == {"proxy", "metrics"}
    assert all("ipBlock" in peer for peer in ingress["proxy"])  # the clinical networks
    assert all("namespaceSelector" in peer for peer in ingress["metrics"])  # monitoring
    egress_ports = {(p["port"], p["protocol"]) for rule in np["spec"]["egress"] for p in rule["ports"]}
    assert egress_ports == {(53, "UDP"), (53, "TCP"), (443, "TCP"), (80, "TCP")}
    # The cloud metadata endpoint is not reachable through the proxy.
    web = next(r for r in np["spec"]["egress"] if any(p["port"] == 443 for p in r["ports"]))
    v4 = next(peer["ipBlock"] for peer in web["to"] if peer["ipBlock"]["cidr"] == "0.0.0.0/0")
    assert "169.254.0.0/16" in v4["except"]
    # The same clinical placeholder on the load balancer.
    proxy = _one("Service", "scrubgate")
    assert {peer["ipBlock"]["cidr"] for peer in ingress["proxy"]} == set(proxy["spec"]["loadBalancerSourceRanges"])


def test_servicemonitor_selects_the_metrics_port():
    sm = _one("ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    spec = sm["spec"]
    selected = [s for _, _, s in MANIFESTS if s["kind"] == "Service" and _matches(spec["selector"], s["metadata"]["labels"])]
    assert [s["metadata"]["name"] for s in selected] == ["scrubgate-metrics"]
    assert spec["namespaceSelector"]["matchNames"] == [selected[0]["metadata"]["namespace"]]
    port_names = {p["name"] for p in selected[0]["spec"]["ports"]}
    assert spec["endpoints"] and all(e["port"] in port_names for e in spec["endpoints"])
    assert all(e.get("path", "/metrics") == "/metrics" for e in spec["endpoints"])
    # deploy/prometheus/alerts.yml selects job="scrubgate".
    assert selected[0]["metadata"]["labels"][spec["jobLabel"]] == "scrubgate"
    # Only fields the ServiceMonitor CRD knows (the part of its schema we use).
    assert set(sm) == {"apiVersion", "kind", "metadata", "spec"}
    assert set(spec) <= {"selector", "namespaceSelector", "endpoints", "jobLabel", "targetLabels",
                         "podTargetLabels", "sampleLimit", "scrapeProtocols"}
    for e in spec["endpoints"]:
        assert set(e) <= {"port", "path", "scheme", "interval", "scrapeTimeout", "honorLabels",
                          "relabelings", "metricRelabelings", "params"}


def test_secret_template_names_the_keys_the_pod_reads():
    secret = _one("Secret", "scrubgate")
    assert secret["type"] == "Opaque"
    wanted = set()
    for v in _pod_spec()["volumes"]:
        if "secret" in v:
            assert v["secret"]["secretName"] == "scrubgate"
            wanted |= {i["key"] for i in v["secret"]["items"]}
    assert wanted == set(secret["stringData"]) == {"mitmproxy-ca.pem", "scrubgate-secret"}
    readme = (K8S / "README.md").read_text(encoding="utf-8")
    assert "create secret generic scrubgate" in readme
    for key in wanted:
        assert f"--from-file={key}=" in readme


# -- the CA: deploy/CA.md's commands, the init container's script, mitmproxy ------------------

def _ca_block(name: str) -> str:
    text = (DEPLOY / "CA.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- tested: " + re.escape(name) + r"\b[^>]*-->\s*```sh\n(.*?)```", text, re.S)
    assert m, f"deploy/CA.md has no tested block {name}"
    return m.group(1)


def _sh(script: str, cwd: Path) -> None:
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    r = subprocess.run(["sh", "-e", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.fixture(scope="module")
def ca_dirs(tmp_path_factory):
    """Two CAs made with deploy/CA.md's commands: plain, and name-constrained to the catalogue."""
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed")
    made = {}
    for variant in ("plain", "constrained"):
        d = tmp_path_factory.mktemp(f"ca-{variant}")
        (d / "policies").symlink_to(ROOT / "policies")
        create = _ca_block("ca-create")
        blocks = [_ca_block("ca-config")]
        if variant == "constrained":
            blocks.append(_ca_block("ca-constraints"))
            assert "-extensions v3_ca " in create
            create = create.replace("-extensions v3_ca ", "-extensions v3_ca_constrained ")
        _sh("\n".join([*blocks, create]), d)  # one shell session, as an admin would run them
        assert oct((d / "mitmproxy-ca.pem").stat().st_mode & 0o777) == "0o600"  # umask 077 in the guide
        made[variant] = d
    return made


def _run_init(src: Path, dst: Path) -> subprocess.CompletedProcess:
    init = _init_container()
    assert init["command"][:2] == ["python", "-c"]
    env = {**os.environ, "SCRUBGATE_CA_SOURCE": str(src), "SCRUBGATE_CONFDIR": str(dst)}
    return subprocess.run([sys.executable, "-c", init["command"][2]], env=env, capture_output=True,
                          text=True, timeout=60)


def _leaf(confdir: Path, host: str) -> bytes:
    from cryptography import x509
    from mitmproxy import certs
    store = certs.CertStore.from_store(confdir, "mitmproxy", 2048)
    return store.get_cert(host, [x509.DNSName(host)]).cert.to_pem()


def _openssl_verify(ca: Path, leaf_pem: bytes, tmp: Path) -> subprocess.CompletedProcess:
    leaf = tmp / "leaf.pem"
    leaf.write_bytes(leaf_pem)
    return subprocess.run(["openssl", "verify", "-CAfile", str(ca), "-purpose", "sslserver", str(leaf)],
                          capture_output=True, text=True)


def test_ca_from_the_guide_goes_through_the_init_container_into_mitmproxy(ca_dirs, tmp_path):
    ca = ca_dirs["plain"]
    text = subprocess.run(["openssl", "x509", "-in", str(ca / "scrubgate-ca.crt"), "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    assert re.search(r"CA:TRUE, pathlen:0", text) and "Certificate Sign, CRL Sign" in text
    src, dst = tmp_path / "secret", tmp_path / "confdir"
    src.mkdir()
    dst.mkdir()
    shutil.copy(ca / "mitmproxy-ca.pem", src / "mitmproxy-ca.pem")
    (src / "scrubgate-secret").write_text(os.urandom(32).hex() + "\n")
    r = _run_init(src, dst)
    assert r.returncode == 0, r.stderr
    assert "sha256" in r.stdout and "UID key 32 bytes" in r.stdout
    assert (dst / "mitmproxy-ca.pem").read_bytes() == (ca / "mitmproxy-ca.pem").read_bytes()
    assert (dst / "mitmproxy-ca.pem").stat().st_mode & 0o777 == 0o600
    assert (dst / "mitmproxy-ca-cert.pem").read_text() == (ca / "scrubgate-ca.crt").read_text()
    assert (dst / "mitmproxy-ca-cert.pem").stat().st_mode & 0o777 == 0o644
    # mitmproxy takes the CA as it is (it adds only its dhparam file) and its leaf
    # certificates chain to the guide's CA.
    leaf = _leaf(dst, "files.slack.com")
    assert (dst / "mitmproxy-dhparam.pem").exists()
    r = _openssl_verify(ca / "scrubgate-ca.crt", leaf, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    # The gateway's key loader takes the UID key the init container accepted.
    assert len(load_secret(src / "scrubgate-secret")) == 32


def test_name_constrained_ca_vouches_only_for_the_catalogue(ca_dirs, tmp_path):
    ca = ca_dirs["constrained"]
    src, dst = tmp_path / "secret", tmp_path / "confdir"
    src.mkdir()
    dst.mkdir()
    shutil.copy(ca / "mitmproxy-ca.pem", src / "mitmproxy-ca.pem")
    (src / "scrubgate-secret").write_text(os.urandom(16).hex())
    assert _run_init(src, dst).returncode == 0
    ok = _openssl_verify(ca / "scrubgate-ca.crt", _leaf(dst, "files.slack.com"), tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = _openssl_verify(ca / "scrubgate-ca.crt", _leaf(dst, "bank.example.org"), tmp_path)
    assert bad.returncode != 0
    assert re.search(r"subtree violation|name constraint", bad.stdout + bad.stderr, re.I), bad.stderr


def test_init_container_refuses_the_placeholders_and_broken_cas(ca_dirs, tmp_path):
    template = _one("Secret", "scrubgate")["stringData"]
    good_ca = (ca_dirs["plain"] / "mitmproxy-ca.pem").read_bytes()
    other_key = (ca_dirs["constrained"] / "scrubgate-ca.key").read_bytes()
    cert_only = (ca_dirs["plain"] / "scrubgate-ca.crt").read_bytes()
    good_key = os.urandom(32).hex().encode()
    cases = {
        "template CA": (template["mitmproxy-ca.pem"].encode(), good_key, "mitmproxy-ca.pem"),
        "template key": (good_ca, template["scrubgate-secret"].encode(), "scrubgate-secret"),
        "short key": (good_ca, os.urandom(8).hex().encode(), "at least 16"),
        "key of another CA": (other_key + cert_only, good_key, "does not belong"),
        "certificate only": (cert_only, good_key, "private key"),
    }
    for case, (ca_pem, uid_key, why) in cases.items():
        src, dst = tmp_path / case / "secret", tmp_path / case / "confdir"
        src.mkdir(parents=True)
        dst.mkdir()
        (src / "mitmproxy-ca.pem").write_bytes(ca_pem)
        (src / "scrubgate-secret").write_bytes(uid_key)
        r = _run_init(src, dst)
        assert r.returncode == 1, case
        assert why in r.stderr, (case, r.stderr)
        assert not (dst / "mitmproxy-ca.pem").exists(), case


def _materialise_pod(tmp: Path, secret: dict[str, bytes]) -> dict[str, Path]:
    """Each of the pod's volumes as a local directory (volume name -> dir), filled as kubelet would."""
    cm = _one("ConfigMap", "scrubgate-policy")
    dirs = {}
    for vol in _pod_spec()["volumes"]:
        d = tmp / "volumes" / vol["name"]
        d.mkdir(parents=True)
        if "configMap" in vol:
            assert vol["configMap"]["name"] == "scrubgate-policy"
            for key, text in cm["data"].items():
                (d / key).write_text(text, encoding="utf-8")
        elif "secret" in vol:
            for item in vol["secret"]["items"]:
                (d / item["path"]).write_bytes(secret[item["key"]])
                (d / item["path"]).chmod(vol["secret"]["defaultMode"])
        dirs[vol["name"]] = d
    return dirs


def _localise(args: list[str], container: dict, dirs: dict[str, Path]) -> list[str]:
    """Container paths in args -> the local volume directories."""
    mounts = sorted(((m["mountPath"], dirs[m["name"]]) for m in container["volumeMounts"]),
                    key=lambda m: -len(m[0]))
    out = []
    for a in args:
        for mount, local in mounts:
            if a == mount or a.startswith(mount + "/"):
                a = str(local) + a[len(mount):]
                break
        out.append(a)
    return out


@pytest.fixture(scope="module")
def deployed_pod(ca_dirs, tmp_path_factory):
    """The init container, then the gateway with the Deployment's own arguments, on local volumes.
    Yields (confdir, the Secret's data, /readyz text, the gateway's log)."""
    from conftest import free_ports, wait_ready
    import httpx

    tmp = tmp_path_factory.mktemp("pod")
    secret = {"mitmproxy-ca.pem": (ca_dirs["plain"] / "mitmproxy-ca.pem").read_bytes(),
              "scrubgate-secret": os.urandom(32).hex().encode() + b"\n"}
    dirs = _materialise_pod(tmp, secret)
    init, main = _init_container(), _container()
    env = {e["name"]: e["value"] for e in init["env"]}
    src = _localise([env["SCRUBGATE_CA_SOURCE"]], init, dirs)[0]
    confdir = _localise([env["SCRUBGATE_CONFDIR"]], init, dirs)[0]
    r = _run_init(Path(src), Path(confdir))
    assert r.returncode == 0, r.stderr

    args = _localise(main["args"], main, dirs)
    port, mport = free_ports(2)
    for flag, value in (("--listen-host", "127.0.0.1"), ("--metrics-host", "127.0.0.1"),
                        ("--listen-port", str(port)), ("--metrics-port", str(mport))):
        args[args.index(flag) + 1] = value
    assert _arg(args, "--confdir") == confdir
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "SCRUBGATE_SECRET_FILE": ""}
    for e in main["env"]:
        env[e["name"]] = _localise([e["value"]], main, dirs)[0]
    log_path = tmp / "gateway.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "scrubgate", *args], stdout=log, stderr=subprocess.STDOUT,
                                env=env, cwd=tmp)
    try:
        wait_ready(proc, mport, log_path, seconds=30)
        ready = httpx.get(f"http://127.0.0.1:{mport}/readyz", timeout=5)
        assert ready.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{mport}/healthz", timeout=5).status_code == 200
    finally:
        stop_process(proc)
    yield Path(confdir), secret, ready.text, log_path.read_text(errors="replace")


def test_the_pod_starts_as_deployed(deployed_pod):
    """Ready with the ConfigMap's policy and the Secret's CA; mitmproxy made no CA of its own."""
    conf, secret, ready, _ = deployed_pod
    assert "policy default" in ready
    assert (conf / "mitmproxy-ca.pem").read_bytes() == secret["mitmproxy-ca.pem"], "the Secret's CA, not a new one"
    ca_files = sorted(p.name for p in conf.iterdir() if p.name.startswith("mitmproxy-"))
    assert ca_files == sorted(["mitmproxy-ca.pem", "mitmproxy-ca-cert.pem", "mitmproxy-ca-cert.cer",
                               "mitmproxy-ca-cert.p12", "mitmproxy-dhparam.pem"])


def test_the_pod_uses_only_the_secret_uid_key(deployed_pod):
    conf, _, _, log = deployed_pod
    assert "created a new DICOM de-identification secret" not in log
    assert not (conf / "scrubgate-secret").exists()


# -- systemd ---------------------------------------------------------------------------------

UNIT = SYSTEMD / "scrubgate.service"


def _unit_settings() -> dict[str, list[str]]:
    """Directive -> values, with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", UNIT.read_text(encoding="utf-8"))
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_systemd_unit_is_hardened():
    s = _unit_settings()
    expect = {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "PrivateDevices": "yes", "CapabilityBoundingSet": "", "AmbientCapabilities": "",
        "StateDirectory": "scrubgate", "LogsDirectory": "scrubgate", "Restart": "on-failure",
        "ExecReload": "/bin/kill -HUP $MAINPID", "User": "scrubgate",
    }
    for key, value in expect.items():
        assert s.get(key) == [value], (key, s.get(key))
    assert set(s["RestrictAddressFamilies"][0].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert "@system-service" in s["SystemCallFilter"]
    assert re.fullmatch(r"\d+[KMGT]?", s["MemoryMax"][0])
    for key in ("ProtectKernelTunables", "ProtectKernelModules", "ProtectControlGroups",
                "RestrictNamespaces", "RestrictSUIDSGID", "LockPersonality"):
        assert s[key] == ["yes"], key


def test_systemd_execstart_parses_and_uses_the_managed_directories():
    s = _unit_settings()
    argv = shlex.split(s["ExecStart"][0])
    assert argv[0] == "/opt/scrubgate/venv/bin/scrubgate"
    argv = [a.replace("%S", "/var/lib").replace("%L", "/var/log") for a in argv[1:]]
    args = _parse_run_args(argv)
    assert args.confdir == "/var/lib/scrubgate"  # StateDirectory=scrubgate
    assert Path(args.secret_file).parent == Path(args.confdir)
    assert Path(args.audit_log).parent == Path("/var/log/scrubgate")  # LogsDirectory=scrubgate
    assert args.policy.startswith("/etc/scrubgate/")  # ConfigurationDirectory, read-only
    assert args.workers > 0
    assert args.metrics_host == "127.0.0.1"
    # logrotate rotates what the unit writes, and reloads instead of copytruncate.
    rot = (SYSTEMD / "scrubgate.logrotate").read_text(encoding="utf-8")
    assert re.search(r"^" + re.escape(args.audit_log) + r"\s*\{", rot, re.M)
    assert "copytruncate" not in re.sub(r"#.*", "", rot)
    assert re.search(r"postrotate\s+.*systemctl [\w-]*reload[\w-]* scrubgate\.service", rot, re.S)


def test_systemd_analyze_verify(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze not installed")
    # verify checks that ExecStart exists: point it at this venv's scrubgate.
    exe = VENV_BIN / "scrubgate"
    if not exe.exists():
        pytest.skip("no scrubgate entry point in the venv")
    unit = tmp_path / "scrubgate.service"
    unit.write_text(UNIT.read_text(encoding="utf-8").replace("/opt/scrubgate/venv/bin/scrubgate", str(exe)))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "scrubgate.service" not in r.stderr, r.stderr
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(unit)], capture_output=True,
                       text=True, timeout=60)
    if "--offline" in r.stderr or "unrecognized option" in r.stderr:
        return  # systemd < 250: no offline security analysis
    m = re.search(r"Overall exposure level for scrubgate\.service: ([\d.]+)", r.stdout)
    assert m, r.stdout[-2000:] + r.stderr
    assert float(m.group(1)) <= 2.0, r.stdout[-3000:]


def test_logrotate_config(tmp_path):
    if not shutil.which("logrotate"):
        pytest.skip("logrotate not installed")
    conf = (SYSTEMD / "scrubgate.logrotate").read_text(encoding="utf-8")
    if _user_missing("scrubgate"):
        conf = conf.replace("create 0640 scrubgate scrubgate", "create 0640 root root")
    conf = conf.replace("/var/log/scrubgate/", f"{tmp_path}/")
    (tmp_path / "audit.jsonl").write_text('{"incident": "x"}\n')
    path = tmp_path / "scrubgate.logrotate"
    path.write_text(conf)
    path.chmod(0o644)
    r = subprocess.run(["logrotate", "-d", "-s", str(tmp_path / "state"), str(path)], capture_output=True,
                       text=True, timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "error" not in out.lower(), out


def _user_missing(name: str) -> bool:
    import pwd
    try:
        pwd.getpwnam(name)
        return False
    except KeyError:
        return True


# -- transparent mode ------------------------------------------------------------------------

def test_transparent_guide_creates_the_user_before_loading_the_rules():
    """nft resolves `meta skuid scrubgate` at load time: a missing user fails the whole file."""
    guide = (TRANSPARENT / "README.md").read_text(encoding="utf-8")
    load = guide.index("nft -c -f /etc/scrubgate/nftables.conf")
    assert -1 < guide.find("useradd --system") < load and "must exist first" in guide[:load]


def test_nftables_rules_static():
    text = re.sub(r"#.*", "", (TRANSPARENT / "nftables.conf").read_text(encoding="utf-8"))
    assert re.search(r"type nat hook prerouting", text)
    assert re.search(r"iifname \$LAN_IF tcp dport \{ 80, 443 \} redirect to :\$PROXY_PORT", text)
    assert re.search(r"iifname \$LAN_IF udp dport 443 reject", text)
    assert re.search(r"meta skuid \$GATEWAY_USER return", text)
    assert "define PROXY_PORT = 8080" in text


def test_nftables_syntax(tmp_path):
    nft = shutil.which("nft")
    if not nft or os.geteuid() != 0:
        pytest.skip("needs nft and root")
    conf = (TRANSPARENT / "nftables.conf").read_text(encoding="utf-8")
    if _user_missing("scrubgate"):  # nft resolves the user name when it parses
        conf = conf.replace('define GATEWAY_USER = "scrubgate"', 'define GATEWAY_USER = "root"')
    path = tmp_path / "nftables.conf"
    path.write_text(conf)
    r = subprocess.run([nft, "-c", "-f", str(path)], capture_output=True, text=True, timeout=30)
    if r.returncode and "Operation not permitted" in r.stderr and "Error: syntax" not in r.stderr:
        pytest.skip("nft -c needs CAP_NET_ADMIN here")
    assert r.returncode == 0, r.stderr


def test_iptables_script_syntax_and_dry_run():
    script = TRANSPARENT / "iptables.sh"
    r = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    if shutil.which("shellcheck"):
        r = subprocess.run(["shellcheck", "-s", "sh", str(script)], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout
    env = {**os.environ, "DRY_RUN": "1", "LAN_IF": "lan0", "PROXY_PORT": "8080", "GATEWAY_USER": "scrubgate"}
    r = subprocess.run(["sh", str(script), "apply"], capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for family, reject in (("iptables", "icmp-admin-prohibited"), ("ip6tables", "icmp6-adm-prohibited")):
        assert (f"{family} -t nat -A SCRUBGATE_PRE -i lan0 -p tcp -m multiport --dports 80,443 "
                f"-j REDIRECT --to-ports 8080") in out
        assert f"{family} -t nat -A SCRUBGATE_OUT -m owner --uid-owner scrubgate -j RETURN" in out
        assert (f"{family} -t filter -A SCRUBGATE_FWD -i lan0 -p udp --dport 443 -j REJECT "
                f"--reject-with {reject}") in out
    # remove undoes exactly the jumps apply adds.
    jumps = set(re.findall(r"-[AI] (PREROUTING|OUTPUT|FORWARD|INPUT)(?: 1)? -j (SCRUBGATE_\w+)", out))
    r = subprocess.run(["sh", str(script), "remove"], capture_output=True, text=True, env=env, timeout=30)
    assert set(re.findall(r"-D (PREROUTING|OUTPUT|FORWARD|INPUT) -j (SCRUBGATE_\w+)", r.stdout)) == jumps
