"""The scrubgate command line, run as a real process."""

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from conftest import ROOT, SCRUBGATE, free_ports, start_gateway, stop_gateway, stop_process, wait_ready
from metadata_samples import PLANTED, encode, float64_planar_tiff, exif_report, identifying_tags, jpeg_with_metadata, picture

POLICIES = ROOT / "policies"


def scrubgate(*args, timeout=60):
    return subprocess.run([*SCRUBGATE, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_sanitize_cleans_and_reports_without_values(tmp_path, exiftool):
    src, out = tmp_path / "in.bin", tmp_path / "out.jpg"  # the name says nothing; the bytes do
    src.write_bytes(jpeg_with_metadata(tmp_path))
    r = scrubgate("sanitize", str(src), "-o", str(out), "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["input"]["format"] == "jpeg" and report["action"] == "sanitize"
    assert report["files"][0]["findings"]["location"]["count"] == 1
    assert not [v for v in PLANTED.values() if v in r.stdout + r.stderr]
    assert identifying_tags(exif_report(out.read_bytes(), tmp_path)) == []


def test_sanitize_burned_in_text_reports_kinds_and_boxes_never_values(tmp_path):
    from pictures import IDENTIFIERS, viewer_screen

    src, out = tmp_path / "screen", tmp_path / "clean.png"
    src.write_bytes(encode(viewer_screen(), "PNG"))
    r = scrubgate("sanitize", str(src), "-o", str(out), "--json", timeout=120)
    assert r.returncode == 0, r.stderr
    findings = json.loads(r.stdout)["files"][0]["findings"]
    assert {"national_id", "date", "mrn", "person_name"} <= set(findings)
    assert all(len(f["box"]) == 4 for f in findings["national_id"]["findings"])
    leaked = [t for t in IDENTIFIERS for part in t.replace("^", " ").split() if len(part) > 4
              and part in r.stdout + r.stderr]
    assert leaked == []
    # --text none: metadata and codes only; the human line names what went.
    r = scrubgate("sanitize", str(src), "-o", str(out), "--text", "none", timeout=120)
    assert r.returncode == 0 and "unchanged" in r.stdout


def test_policy_faces_choice_reaches_the_engine(tmp_path):
    """strict.yaml says faces: block; the worker pipeline must honour it."""
    from skimage import data
    from PIL import Image

    src, out = tmp_path / "portrait", tmp_path / "out.jpg"
    src.write_bytes(encode(Image.fromarray(data.astronaut()), "JPEG"))
    r = scrubgate("sanitize", str(src), "-o", str(out), "--json", "--policy", str(ROOT / "policies/strict.yaml"),
                  timeout=120)
    assert r.returncode == 3 and json.loads(r.stdout)["reason"] == "identifiable_face" and not out.exists()
    r = scrubgate("sanitize", str(src), "-o", str(out), "--json", timeout=120)  # default: blur
    assert r.returncode == 0 and "face" in json.loads(r.stdout)["files"][0]["findings"]


def test_sanitize_refusal_writes_nothing(tmp_path):
    src, out = tmp_path / "cut.jpg", tmp_path / "out.jpg"
    src.write_bytes(jpeg_with_metadata(tmp_path)[:500])
    r = scrubgate("sanitize", str(src), "-o", str(out))
    assert r.returncode == 3 and not out.exists()
    assert "corrupt" in r.stderr


def test_sanitize_opaque_service_is_refused(tmp_path):
    src, out = tmp_path / "a.png", tmp_path / "b.png"
    src.write_bytes(encode(picture(), "PNG"))
    r = scrubgate("sanitize", str(src), "-o", str(out), "--service", "whatsapp", "--json")
    assert r.returncode == 3 and json.loads(r.stdout)["reason"] == "opaque_service" and not out.exists()


def test_sanitize_refuses_files_it_cannot_clean(tmp_path):
    src, out = tmp_path / "patients.txt", tmp_path / "out.txt"
    src.write_text("Jane Doe, 943 476 5919\n")
    r = scrubgate("sanitize", str(src), "-o", str(out), "--json")
    assert r.returncode == 3 and json.loads(r.stdout)["files"][0]["content"] == "other" and not out.exists()


def test_sanitize_names_what_it_cannot_clean(tmp_path):
    """Offline there is no upload policy to blame: a file with no cleaner is unsupported_format."""
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    text = tmp_path / "notes.txt"
    text.write_text("Ward round notes\n")
    raw = tmp_path / "dataset.bin"  # a DICOM dataset written without preamble and DICM
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    buf = DicomBytesIO()
    buf.is_little_endian, buf.is_implicit_VR = True, False
    write_dataset(buf, ds)
    raw.write_bytes(buf.getvalue())
    assert b"DICM" not in raw.read_bytes()[:200]
    for src, hint in ((text, "not an image"), (raw, "DICM")):
        r = scrubgate("sanitize", str(src), "-o", str(tmp_path / "out"))
        assert r.returncode == 3 and "unsupported_format" in r.stderr and hint in r.stderr, r.stderr
        assert "policy" not in r.stderr
    r = scrubgate("sanitize", str(text), "-o", str(tmp_path / "out"), "--json")
    report = json.loads(r.stdout)
    assert report["reason"] == report["files"][0]["reason"] == "unsupported_format"


def test_a_float64_planar_tiff_is_unsupported_not_corrupt(tmp_path):
    src = tmp_path / "float.tif"
    src.write_bytes(float64_planar_tiff())
    r = scrubgate("sanitize", str(src), "-o", str(tmp_path / "out.tif"))
    assert r.returncode == 3 and "unsupported_format" in r.stderr and "corrupt" not in r.stderr, r.stderr


def test_sanitize_json_says_each_thing_once(tmp_path):
    src = tmp_path / "a.png"
    src.write_bytes(encode(picture(), "PNG"))
    report = json.loads(scrubgate("sanitize", str(src), "-o", str(tmp_path / "b.png"), "--json").stdout)
    assert "verdict" not in report and len(report["files"]) == 1


def test_sanitize_cannot_write_is_a_usage_error(tmp_path):
    src = tmp_path / "a.png"
    src.write_bytes(encode(picture(), "PNG"))
    for out, why in ((tmp_path / "no" / "such" / "b.png", "does not exist"), (tmp_path, "is a directory")):
        r = scrubgate("sanitize", str(src), "-o", str(out))
        assert r.returncode == 2, r.stderr
        assert f"cannot write {out}" in r.stderr and why in r.stderr and "internal error" not in r.stderr


def test_sanitize_output_follows_the_umask_and_keeps_the_inputs_mode(tmp_path):
    import os
    src = tmp_path / "a.png"
    src.write_bytes(encode(picture(), "PNG"))
    os.chmod(src, 0o640)
    new = tmp_path / "new.png"
    r = subprocess.run(["sh", "-c", 'umask 022 && exec "$@"', "sh", *SCRUBGATE, "sanitize", str(src), "-o", str(new)],
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert new.stat().st_mode & 0o777 == 0o644
    r = scrubgate("sanitize", str(src), "-o", str(src))  # in place
    assert r.returncode == 0, r.stderr
    assert src.stat().st_mode & 0o777 == 0o640


def test_busy_ports_name_the_flag(tmp_path):
    import socket
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        free = free_ports(1)[0]
        for flags, flag in ((["--listen-port", str(port), "--metrics-port", str(free)], "--listen-port"),
                            (["--listen-port", str(free), "--metrics-port", str(port)], "--metrics-port")):
            r = scrubgate("run", "--confdir", str(tmp_path / "conf"), *flags, timeout=60)
            assert r.returncode == 2, r.stderr
            assert flag in r.stderr and "Traceback" not in r.stderr and "--mode" not in r.stderr
            assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_quiet_still_says_where_it_listens(tmp_path):
    port, mport = free_ports(2)
    log = tmp_path / "log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([*SCRUBGATE, "run", "-q", "--listen-port", str(port), "--metrics-port", str(mport),
                                 "--confdir", str(tmp_path / "conf"), "--workers", "1"],
                                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        wait_ready(proc, mport, log)
        deadline = time.monotonic() + 10
        while f"listening on 127.0.0.1:{port}" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        text = log.read_text()
        assert f"proxy listening on 127.0.0.1:{port}" in text and f"{mport}/metrics" in text, text
    finally:
        stop_process(proc)


def test_sanitize_usage_errors(tmp_path):
    assert scrubgate("sanitize", str(tmp_path / "missing.jpg"), "-o", str(tmp_path / "o")).returncode == 2
    src = tmp_path / "a.png"
    src.write_bytes(encode(picture(), "PNG"))
    r = scrubgate("sanitize", str(src), "-o", str(tmp_path / "o"), "--service", "myspace")
    assert r.returncode == 2 and "unknown service" in r.stderr
    assert scrubgate("sanitize", str(src)).returncode == 2  # -o is required


def test_policy_check_prints_the_decision_table():
    r = scrubgate("policy", "check", str(POLICIES / "default.yaml"))
    assert r.returncode == 0, r.stderr
    lines = {line.split()[0]: line.split() for line in r.stdout.splitlines() if line.strip()}
    assert lines["service"][:3] == ["service", "media", "image"]
    assert lines["whatsapp"][1:3] == ["opaque", "block"]
    assert lines["slack"][1:3] == ["inspectable", "sanitize"]


def test_policy_check_shows_faces_and_the_dicom_options():
    r = scrubgate("policy", "check", str(POLICIES / "strict.yaml"))
    assert r.returncode == 0, r.stderr
    assert "faces: block" in r.stdout  # strict's choice must be visible
    dicom = next(line for line in r.stdout.splitlines() if line.strip().startswith("dicom:"))
    assert "retain_longitudinal=off" in dicom and "clean_pixel_data=true" in dicom and "secret" not in dicom


def test_policy_check_names_the_bad_field(tmp_path):
    shutil.copy(POLICIES / "services.yaml", tmp_path / "services.yaml")
    bad = tmp_path / "p.yaml"
    bad.write_text("name: p\napproved_channel: {name: a, url: 'https://a'}\nrules:\n  - action: explode\n")
    r = scrubgate("policy", "check", str(bad))
    assert r.returncode == 1 and "rules[0].action" in r.stderr


def test_run_rejects_a_bad_resolve_spec():
    r = scrubgate("run", "--listen-port", "0", "--metrics-port", "0", "--resolve", "nonsense")
    assert r.returncode == 2 and "HOST:PORT=ADDR:PORT" in r.stderr


def test_run_refuses_options_that_would_bypass_inspection():
    r = scrubgate("run", "--listen-port", "0", "--metrics-port", "0", "--set", "stream_large_bodies=1m")
    assert r.returncode == 2 and "stream_large_bodies" in r.stderr


def test_help_documents_the_contract():
    r = scrubgate("run", "--help")
    for flag in ("--policy", "--listen-host", "--listen-port", "--metrics-host", "--metrics-port", "--confdir",
                 "--mode", "--set", "--audit-log", "--resolve"):
        assert flag in r.stdout
    assert "--upstream-ca" in r.stdout and "SCRUBGATE_WORKER_NICENESS" in r.stdout
    sanitize_help = scrubgate("sanitize", "--help").stdout
    exit_2 = sanitize_help[sanitize_help.index("  2  "):sanitize_help.index("  3  ")]
    assert "unknown service" in exit_2 and "cannot be written" in exit_2


def test_readme_lists_every_scrubgate_option():
    """Each option an addon registers is named in the README (mitmdump users have no --help of ours)."""
    code = "".join(p.read_text() for p in (ROOT / "addons" / "scrubgate").rglob("*.py"))
    options = set(re.findall(r'add_option\(\s*"(scrubgate_\w+)"', code))
    assert len(options) >= 10
    readme = (ROOT / "README.md").read_text()
    assert sorted(o for o in options if f"`{o}`" not in readme) == []


def test_docs_agree_with_the_code():
    readme = (ROOT / "README.md").read_text()
    assert "dir0001" not in readme and "DIR00001/" in readme  # archive.py's folder names
    pac_dir = ROOT / "deploy" / "pac"
    placeholder = re.search(r"--proxy (\S+):8080", (pac_dir / "scrubgate.pac").read_text()).group(1)
    for doc in (readme, (pac_dir / "README.md").read_text(), (pac_dir / "make_pac.py").read_text()):
        assert set(re.findall(r"--proxy (\S+):8080", doc)) == {placeholder}
    assert "takes a second" not in readme


def test_ca_command_creates_the_ca(tmp_path):
    r = scrubgate("ca", "--confdir", str(tmp_path))
    assert r.returncode == 0 and Path(r.stdout.strip()).is_file()


def test_stock_mitmdump_loads_the_addons(tmp_path, upstream):
    """Admins debug with mitmdump/mitmweb -s; the same addons must load there."""
    port, mport = free_ports(2)
    mitmdump = Path(sys.executable).parent / "mitmdump"
    proc = subprocess.Popen([str(mitmdump), "-q", "-s", str(ROOT / "addons/scrubgate/mitmaddon.py"),
                             "--listen-port", str(port), "--set", f"scrubgate_metrics_port={mport}",
                             "--set", f"confdir={tmp_path}"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_ready(proc, mport)
        assert "scrubgate_policy_info" in httpx.get(f"http://127.0.0.1:{mport}/metrics").text
    finally:
        stop_process(proc)


def test_policy_hot_reload_and_bad_reload(tmp_path, upstream):
    policy_dir = tmp_path / "policies"
    shutil.copytree(POLICIES, policy_dir)
    policy = policy_dir / "default.yaml"
    gw = start_gateway(tmp_path, upstream, policy=policy)
    try:
        jpeg = encode(picture(), "JPEG", comment=b"x" * 10)
        with gw.client() as c:
            assert c.post("https://slack.com/api/files.upload", files={"f": ("a.jpg", jpeg)}).status_code == 200
            # A new, valid policy that blocks images is picked up without a restart.
            policy.write_text(policy.read_text().replace("version: \"2026.11.1\"", "version: \"reloaded\"")
                              .replace("content: [image, dicom, archive]\n    action: sanitize",
                                       "content: [image, dicom, archive]\n    action: block"))
            wait_for(lambda: 'version="reloaded"' in gw.metrics())
            assert c.post("https://slack.com/api/files.upload", files={"f": ("a.jpg", jpeg)}).status_code == 403
            # A broken file is reported and counted; the running policy stays.
            policy.write_text("name: [broken\n")
            wait_for(lambda: 'scrubgate_policy_reloads_total{result="failure"} 1.0' in gw.metrics())
            assert 'version="reloaded"' in gw.metrics()
            assert c.post("https://slack.com/api/files.upload", files={"f": ("a.jpg", jpeg)}).status_code == 403
        assert "policy reload failed" in gw.log()
    finally:
        stop_gateway(gw)


def wait_for(check, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError("condition not met in time")


def test_sighup_reopens_the_audit_log(tmp_path, upstream):
    """logrotate moves the file and sends SIGHUP; new records go to a fresh file."""
    import signal
    gw = start_gateway(tmp_path, upstream)
    try:
        jpeg = encode(picture(), "JPEG", comment=b"x" * 10)
        with gw.client() as c:
            assert c.post("https://slack.com/api/files.upload", files={"f": ("a.jpg", jpeg)}).status_code == 200
            rotated = gw.audit_log.with_suffix(".1")
            gw.audit_log.rename(rotated)
            gw.proc.send_signal(signal.SIGHUP)
            wait_for(gw.audit_log.exists)
            assert c.post("https://slack.com/api/files.upload", files={"f": ("a.jpg", jpeg)}).status_code == 200
        assert len(rotated.read_text().splitlines()) == 1
        wait_for(lambda: len(gw.audit_log.read_text().splitlines()) == 1)
    finally:
        stop_gateway(gw)


def test_audit_rotation_sizes_read_like_logrotate():
    from scrubgate.cli import build_parser

    args = build_parser().parse_args(["run", "--audit-log", "a.jsonl", "--audit-max-bytes", "100M",
                                      "--audit-backups", "3"])
    assert (args.audit_max_bytes, args.audit_backups) == (100 * 1024 * 1024, 3)
    assert build_parser().parse_args(["run", "--audit-max-bytes", "2048"]).audit_max_bytes == 2048


def test_run_refuses_a_negative_worker_count(tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "scrubgate", "run", "--workers", "-1", "--listen-port", "0",
                        "--metrics-port", "0", "--confdir", str(tmp_path)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and "scrubgate_workers" in r.stderr


def test_no_module_shadows_the_standard_library():
    """`mitmdump -s addons/scrubgate/mitmaddon.py` puts the package folder on sys.path:
    a module there named like a standard one (inspect.py did) would replace it for everyone."""
    package = ROOT / "addons" / "scrubgate"
    names = {p.stem for p in package.glob("*.py")} | {p.name for p in package.iterdir() if p.is_dir()}
    assert sorted(names & set(sys.stdlib_module_names)) == []


def test_helpers_are_imported_as_packages_not_through_sys_path():
    """Tests, benchmarks and the evaluation suite share helpers as packages (scrubgate.samples,
    bench, evaluation; pytest's pythonpath). A sys.path edit is only right where a benchmark
    loads another checkout on purpose, and says so on that line."""
    import re

    edits = []
    for folder in ("tests", "bench", "evaluation"):
        for path in sorted((ROOT / folder).glob("*.py")):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if re.search(r"sys\.path(\.insert|\.append|\[:0\]|\s*=)", line) and "another checkout" not in line:
                    edits.append(f"{path.relative_to(ROOT)}:{n}")
    assert edits == []


def test_run_rejects_a_superscript_port_in_resolve():
    r = scrubgate("run", "--listen-port", "0", "--metrics-port", "0", "--resolve", "a.example:443=127.0.0.1:8²")
    assert r.returncode == 2 and "HOST:PORT=ADDR:PORT" in r.stderr
