"""The `scrubgate` command line: run the gateway, clean one file, check a policy."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

from . import __version__, logsafe, paths

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_REFUSED = 0, 1, 2, 3

DESCRIPTION = """\
scrubgate is an egress proxy, built on mitmproxy, that removes patient
identifiers from images uploaded to consumer messengers (WhatsApp, Slack,
X, Discord, ...) or blocks the upload with a page that names the approved
channel. Only hosts in the service catalogue are decrypted; everything else
is tunnelled untouched."""

RUN_EPILOG = """\
examples:
  scrubgate run                                   # default policy, proxy on 127.0.0.1:8080
  scrubgate run --listen-host 0.0.0.0 --policy /etc/scrubgate/strict.yaml
  scrubgate run --mode transparent --set block_global=false
  scrubgate run --resolve slack.com:443=127.0.0.1:8443 --upstream-ca test-ca.pem
                                                  # a local stand-in for Slack, with its own test CA

Clients must trust the CA in CONFDIR (mitmproxy-ca-cert.pem); see `scrubgate ca`.
Metrics: http://METRICS_HOST:METRICS_PORT/metrics, liveness /healthz, readiness /readyz.
The policy file is reloaded when it changes and on SIGHUP; an invalid new file is
logged, counted in scrubgate_policy_reloads_total{result="failure"} and ignored.
A port already in use stops the start with exit status 2 and names the flag to change.

environment:
  SCRUBGATE_WORKER_NICENESS  how far below the proxy's priority the sanitiser workers run
                             (default 10; 0: same priority), so chat is served before OCR
  SCRUBGATE_SECRET_FILE      default for --secret-file"""

SANITIZE_EPILOG = """\
what is cleaned:
  images (JPEG, PNG/APNG, WebP, GIF, TIFF, BMP, HEIC/HEIF/AVIF): all metadata (EXIF, GPS,
  XMP, IPTC, comments, text chunks) is dropped by copying bytes; then the pixels are read
  (Tesseract OCR, several passes), and lines of burned-in text that carry an identifier
  are painted out with a solid box, barcodes/QR/DataMatrix always, faces in photographs
  blurred. The picture is re-encoded only when pixels changed (JPEG keeps its tables).

  DICOM: the header goes through every row of PS3.15 Annex E Table E.1-1 with the
  options of the policy's `dicom:` block; UIDs are remapped with a keyed hash (see
  --secret-file), dates shifted per patient, private tags, overlays, curves and icon
  images removed; burned-in text is painted out in every frame (cine loops: frames
  whose text changed are read again). Re-encoded in the same transfer syntax where an
  encoder exists (RLE, JPEG-LS, JPEG 2000), else Explicit VR Little Endian.

  ZIP archives (DICOM studies, DICOMDIR layouts): every member is cleaned the same way,
  with one study's header values guiding the OCR of all its files; member names that
  carry identifiers are replaced; zip bombs, deep nesting and encrypted members are
  refused.

exit status:
  0  OUTPUT written (cleaned, or already clean)
  1  internal error (nothing written)
  2  usage error: bad arguments, unreadable input, OUTPUT cannot be written, invalid
     policy, unknown service (nothing written)
  3  refused (nothing written): the policy blocks it, or it cannot be cleaned; the
     reason is printed: unsupported_format, corrupt, too_large, identifiable_face, ...

OUTPUT is replaced in one step. An existing OUTPUT keeps its mode (so -o INPUT never
changes the input's permissions); a new one is created with the umask's mode.

--json prints one JSON document: the input's sniffed format, the action and reason,
and under "files" one entry per file found (a ZIP has several): its action, whether
it changed, metadata removed and findings by kind with boxes and counts. It never
prints identifier values."""

ICAP_EPILOG = """\
examples:
  scrubgate icap                                  # icap://127.0.0.1:1344/reqmod, metrics on :9465
  scrubgate icap --listen-host 0.0.0.0 --policy /etc/scrubgate/default.yaml --audit-log /var/log/scrubgate/audit.jsonl

Squid (deploy/icap/squid.conf has a complete, tested configuration):
  icap_enable on
  icap_service scrubgate reqmod_precache icap://127.0.0.1:1344/reqmod bypass=off
  adaptation_access scrubgate allow all
  adaptation_send_client_ip on

answers:
  OPTIONS   Methods: REQMOD, Allow: 204, Preview: 0, Max-Connections, Options-TTL, and an
            ISTag that changes when the policy does
  REQMOD    204 for anything outside the catalogue or left unchanged (decided from the
            headers, before the body, when the client sends a preview); the cleaned request
            with lengths fixed; or an encapsulated HTTP 403 with the block page
  errors    400 malformed, 404 unknown service, 405 RESPMOD, 503 not ready or too many
            connections: with bypass=off the proxy then refuses the request (fail closed)

The client's address comes from X-Client-IP, the user from X-Authenticated-User, when the
proxy sends them. Metrics and /readyz are as for `scrubgate run`, plus
scrubgate_icap_requests_total, scrubgate_icap_errors_total and scrubgate_icap_connections."""

POLICY_EPILOG = """\
exit status: 0 when the policy is valid, 1 when it is not (each problem is printed
with the field it concerns, e.g. rules[2].content), 2 on usage errors."""


def build_parser() -> argparse.ArgumentParser:
    from .engine.limits import FACES_MODES, TEXT_MODES

    parser = argparse.ArgumentParser(prog="scrubgate", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"scrubgate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    run = sub.add_parser("run", help="run the gateway proxy", epilog=RUN_EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter,
                         description="Run the gateway: a mitmproxy with the scrubgate addons loaded.")
    run.add_argument("--listen-host", default="127.0.0.1", metavar="HOST",
                     help="proxy listen address (default: %(default)s; 0.0.0.0 for all interfaces)")
    run.add_argument("--listen-port", type=int, default=8080, metavar="PORT",
                     help="proxy listen port (default: %(default)s)")
    run.add_argument("--metrics-port", type=int, default=9464, metavar="PORT",
                     help="port of the metrics/health endpoint, 0 to disable (default: %(default)s)")
    run.add_argument("--mode", action="append", metavar="MODE",
                     help="proxy mode, passed to mitmproxy; repeatable (regular, transparent, "
                          "wireguard, socks5, reverse:URL, ...; default: regular)")
    run.add_argument("--resolve", action="append", default=[], metavar="HOST:PORT=ADDR:PORT",
                     help="connect to ADDR:PORT when a client asks for HOST:PORT (like curl --resolve); "
                          "repeatable; for tests and demos")
    run.add_argument("--upstream-ca", metavar="PEM",
                     help="also trust this CA when verifying the services' certificates (mitmproxy's "
                          "ssl_verify_upstream_trusted_ca); for a --resolve stand-in with its own test "
                          "CA. The system's trust store still applies")
    _gateway_args(run)

    icap = sub.add_parser("icap", help="run the gateway as an ICAP service for an existing proxy",
                          epilog=ICAP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                          description="Serve ICAP REQMOD (RFC 3507) so that the hospital's own web proxy "
                                      "(Squid, a secure web gateway) calls scrubgate with each request it "
                                      "decrypted: same policy, workers, metrics, audit and fail-closed rules "
                                      "as `scrubgate run`.")
    icap.add_argument("--listen-host", default="127.0.0.1", metavar="HOST",
                      help="ICAP listen address (default: %(default)s; 0.0.0.0 for all interfaces)")
    icap.add_argument("--listen-port", type=int, default=1344, metavar="PORT",
                      help="ICAP listen port (default: %(default)s)")
    icap.add_argument("--metrics-port", type=int, default=9465, metavar="PORT",
                      help="port of the metrics/health endpoint, 0 to disable (default: %(default)s, "
                           "beside a `scrubgate run` on 9464)")
    icap.add_argument("--max-connections", type=int, default=1000, metavar="N",
                      help="ICAP connections served at once; more get 503 (default: %(default)s; "
                           "announced in OPTIONS)")
    icap.add_argument("--timeout", type=int, default=120, metavar="SECONDS",
                      help="time one ICAP request may take to arrive and be answered, and an idle "
                           "connection is kept (default: %(default)s)")
    icap.set_defaults(mode=None, resolve=[], upstream_ca=None)
    _gateway_args(icap)

    san = sub.add_parser("sanitize", help="clean one file offline with the same engine",
                         epilog=SANITIZE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                         description="Clean one file the way the gateway would clean an upload.")
    san.add_argument("input", metavar="INPUT", help="file to clean (its type is sniffed, not guessed "
                                                    "from the name)")
    san.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="where to write the result")
    san.add_argument("--policy", default=str(paths.default_policy()), metavar="PATH",
                     help="policy file (default: %(default)s)")
    san.add_argument("--service", metavar="NAME",
                     help="apply the policy as for uploads to this catalogue service (e.g. slack); "
                          "default: as for any plain-HTTPS service")
    san.add_argument("--text", choices=TEXT_MODES,
                     help="override the policy: burned-in text to paint out (identifiers: lines "
                          "carrying names, IDs, dates...; all: every word; none: metadata, codes "
                          "and faces only)")
    san.add_argument("--faces", choices=FACES_MODES,
                     help="override the policy: what to do with faces in photographs")
    san.add_argument("--secret-file", metavar="PATH", default=os.environ.get("SCRUBGATE_SECRET_FILE", ""),
                     help="deployment secret for DICOM UIDs and dates, as the gateway uses (default: "
                          "$SCRUBGATE_SECRET_FILE; without one, a random key for this run only, so "
                          "UIDs are consistent within one archive but not with the gateway's)")
    san.add_argument("--json", action="store_true", help="print the verdict as JSON on stdout")

    pol = sub.add_parser("policy", help="work with policy files")
    pol_sub = pol.add_subparsers(dest="policy_command", metavar="SUBCOMMAND")
    pol_sub.required = True
    check = pol_sub.add_parser("check", help="validate a policy and print its decision table",
                               epilog=POLICY_EPILOG,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("path", metavar="PATH", help="policy file to validate")

    ca = sub.add_parser("ca", help="create (if needed) and show the gateway's CA certificate",
                        description="Print the path of the CA certificate clients must trust, "
                                    "creating the CA in CONFDIR first if it does not exist.")
    ca.add_argument("--confdir", default="~/.mitmproxy", metavar="DIR",
                    help="mitmproxy configuration directory (default: %(default)s)")

    demo = sub.add_parser("demo", help="see the gateway clean and block sample uploads (offline, no setup)",
                          description="Start a local stand-in messenger and the gateway with the default "
                                      "policy, send synthetic uploads through it, and show what was done, "
                                      "before/after pictures and the metrics that moved. Nothing leaves "
                                      "this machine.")
    demo.add_argument("--out", default="./scrubgate-demo", metavar="DIR",
                      help="where to write the before/after pictures (default: %(default)s)")
    demo.add_argument("--workers", type=int, default=2, metavar="N",
                      help="sanitiser worker processes (default: %(default)s)")
    demo.add_argument("--keep-running", action="store_true",
                      help="leave the gateway up afterwards and print how to point a browser at it")
    return parser


def _gateway_args(p: argparse.ArgumentParser) -> None:
    """The arguments `run` and `icap` share: policy, metrics, audit, secret, workers."""
    p.add_argument("--policy", default=str(paths.default_policy()), metavar="PATH",
                   help="policy file (default: %(default)s)")
    p.add_argument("--metrics-host", default="127.0.0.1", metavar="HOST",
                   help="address of the metrics/health endpoint (default: %(default)s)")
    p.add_argument("--confdir", metavar="DIR",
                   help="mitmproxy configuration directory holding the CA (default: ~/.mitmproxy)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="set_options",
                   help="set any mitmproxy option; repeatable (e.g. --set proxyauth=user:pass)")
    p.add_argument("--audit-log", metavar="PATH",
                   help="append one JSON line per decision to PATH ('-' for stdout); reopened on "
                        "SIGHUP for logrotate; format: deploy/audit.md")
    p.add_argument("--audit-max-bytes", type=_size, default=0, metavar="SIZE",
                   help="rotate the audit log before it grows past SIZE (bytes, or with K, M, G: "
                        "100M); PATH becomes PATH.1 and older files shift (default: 0, no rotation "
                        "by size: leave it to logrotate)")
    p.add_argument("--audit-backups", type=int, default=5, metavar="N",
                   help="rotated audit files to keep with --audit-max-bytes (default: %(default)s)")
    p.add_argument("--secret-file", metavar="PATH", default=os.environ.get("SCRUBGATE_SECRET_FILE", ""),
                   help="deployment secret that keys DICOM UID remapping and date shifting; replicas "
                        "must share it (default: $SCRUBGATE_SECRET_FILE, else CONFDIR/scrubgate-secret, "
                        "created on first start)")
    p.add_argument("--workers", type=int, default=0, metavar="N",
                   help="sanitiser worker processes (default: one per CPU)")
    p.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")


def _size(text: str) -> int:
    """'100M' -> 104857600: sizes for humans, as logrotate writes them."""
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    text = text.strip().upper().removesuffix("B")
    factor = units.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in units else text
    try:
        value = int(number) * factor
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 100M)") from None
    if value < 0:
        raise argparse.ArgumentTypeError("a size cannot be negative")
    return value


def main(argv: list[str] | None = None) -> int:
    logsafe.install()
    try:
        return _dispatch(build_parser().parse_args(argv))
    except BrokenPipeError:  # `scrubgate policy check ... | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _dispatch(args) -> int:
    if args.command in ("run", "icap"):
        from .run import run
        return run(args, icap=args.command == "icap")
    if args.command == "sanitize":
        return sanitize_command(args)
    if args.command == "policy":
        return policy_check(args.path)
    if args.command == "ca":
        return ca_command(args.confdir)
    if args.command == "demo":
        from .demo import main as demo_main
        return demo_main(args)
    return EXIT_USAGE


def _err(message: str) -> None:
    print(f"scrubgate: {message}", file=sys.stderr)


def policy_check(path: str) -> int:
    from .engine.verdict import CONTENT_KINDS
    from .policy import Policy, PolicyError
    try:
        policy = Policy.load(path)
    except PolicyError as e:
        _err(f"{e.source} is not a valid policy:")
        for line in e.errors:
            print(f"  {line}", file=sys.stderr)
        return EXIT_INTERNAL
    print(f"policy {policy.name!r} version {policy.version}: valid")
    print(f"  catalogue: {policy.catalogue.source} ({len(policy.catalogue.services)} services)")
    print(f"  fail: {policy.fail}   text: {policy.text}   faces: {policy.faces}   "
          f"chunked uploads: {policy.chunked_uploads}")
    dicom = {f.name: getattr(policy.dicom, f.name) for f in dataclasses.fields(policy.dicom) if f.name != "secret"}
    print("  dicom: " + ", ".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in dicom.items()))
    lim = policy.limits
    print(f"  limits: body {lim.max_body_bytes} bytes, {lim.max_payloads} files/request, "
          f"{lim.engine.max_pixels} pixels, {lim.job_timeout_seconds:g} s/job, queue {lim.max_queue}")
    print(f"  approved channel: {policy.approved_channel.name} <{policy.approved_channel.url}>")
    print(f"  sha256: {policy.sha256}")
    print()
    head = ["service", "media", *CONTENT_KINDS]
    rows = [[sid, media, *(acts[c] for c in CONTENT_KINDS)] for sid, media, acts in policy.decision_table()]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, ["-" * w for w in widths], *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
    refused = [h for s in policy.catalogue.services for h in s.media_hosts
               if policy.refusal_at_hello(h.replace("*.", "x.")) is not None]
    print(f"\nrefused by name before decryption (tls.blocked_media_hosts: {policy.tls.blocked_media_hosts}): "
          f"{', '.join(refused) or 'none'}")
    chat = sorted(h for s in policy.catalogue.services for h in s.chat_hosts)
    print(f"tunnelled for clients that fail the handshake (tls.untrusted_clients: "
          f"{policy.tls.untrusted_clients}): {', '.join(chat) if policy.tls.untrusted_clients == 'tunnel_chat' else 'none'}")
    return EXIT_OK


def sanitize_command(args) -> int:
    """The gateway's own pipeline (inspect_body) on one file, as if uploaded to --service."""
    from .engine import sniff
    from .job import BodyJob, inspect_body
    from .keys import SecretError, load_secret
    from .policy import Policy, PolicyError, Service
    try:
        data = Path(args.input).read_bytes()
    except OSError as e:
        _err(f"cannot read {args.input}: {e.strerror}")
        return EXIT_USAGE
    unwritable = _unwritable(Path(args.output))
    if unwritable:  # say so before minutes of OCR, not after
        _err(f"cannot write {args.output}: {unwritable}")
        return EXIT_USAGE
    try:
        policy = Policy.load(args.policy)
    except PolicyError as e:
        _err("invalid policy " + "\n  ".join([e.source, *e.errors]))
        return EXIT_USAGE
    if args.service:
        service = policy.catalogue.by_id.get(args.service)
        if service is None:
            _err(f"unknown service {args.service!r}; known: {', '.join(policy.catalogue.by_id)}")
            return EXIT_USAGE
    else:
        service = Service(id="offline", name="offline", media="inspectable", hosts=())
    secret = b""
    if args.secret_file:
        try:
            secret = load_secret(args.secret_file)
        except SecretError as e:
            _err(str(e))
            return EXIT_USAGE
    try:
        kind = sniff(data)
        plan = policy.plan_for(service, secret)
        overrides = {k: v for k, v in (("text", args.text), ("faces", args.faces)) if v}
        if overrides:
            plan = dataclasses.replace(plan, **overrides)
        job = BodyJob(data, "", "", upload=True, opaque=service.media == "opaque", plan=plan)
        outcome = inspect_body(job)
        if outcome.action == "block" and kind.content == "other" and outcome.reason == "policy":
            # Offline there is no upload policy to blame: the engine has no cleaner for it.
            outcome.reason, outcome.detail = "unsupported_format", _not_cleanable(data)
            for p in outcome.payloads:
                p.reason, p.detail = outcome.reason, outcome.detail
        files = [p.summary() for p in outcome.payloads]
        report: dict = {"input": {"bytes": len(data), "format": kind.format, "content": kind.content},
                        "service": service.id, "action": outcome.action, "reason": outcome.reason,
                        "files": files}
        output = None if outcome.action == "block" else (outcome.new_body or data)
        if output is not None:
            _write_atomic(Path(args.output), output)
        report["output"] = args.output if output is not None else None
        code = EXIT_OK if output is not None else EXIT_REFUSED
        report["exit"] = code
    except OSError as e:
        _err(f"cannot write {args.output}: {e.strerror or type(e).__name__}; nothing written")
        return EXIT_USAGE
    except Exception as e:  # keep the promise: exit 1 and nothing written
        _err(f"internal error while sanitising ({type(e).__name__})")
        return EXIT_INTERNAL
    if args.json:
        print(json.dumps(report, indent=2))
    elif code == EXIT_REFUSED:
        detail = f": {outcome.detail}" if outcome.detail else ""
        _err(f"refused ({outcome.reason}){detail}; nothing written")
    else:
        what = "cleaned" if outcome.new_body is not None else "unchanged"
        found = Counter(f.kind for p in outcome.payloads for f in p.findings)
        listed = ", ".join(f"{k} x{n}" for k, n in sorted(found.items()))
        print(f"{args.output}: {kind.format}, {what}" + (f"; removed {listed}" if listed else ""))
    return code


def _unwritable(path: Path) -> str | None:
    """Why OUTPUT cannot be written, checked up front; None when it can."""
    parent = path.parent
    if path.is_dir():
        return "it is a directory"
    if not parent.is_dir():
        return f"directory {parent} does not exist"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"no permission to create files in {parent}"
    return None


def _not_cleanable(data: bytes) -> str:
    if len(data) >= 8 and data[:2] in (b"\x02\x00", b"\x08\x00") and data[4:6].isalpha():
        # (0002,xxxx) or (0008,xxxx) with an explicit VR: a DICOM dataset without its Part 10 header
        return ("looks like a DICOM dataset without the 128-byte preamble and DICM prefix; "
                "write it as a Part 10 file (e.g. dcmconv +F) and try again")
    return "not an image, DICOM file or ZIP archive that scrubgate can clean (sniffed from its bytes)"


def _write_atomic(path: Path, data: bytes) -> None:
    """Replace PATH in one step. A file that exists keeps its mode (so the input's mode is
    never touched by -o INPUT); a new one gets the umask's, as any other tool's output."""
    try:
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            os.fchmod(f.fileno(), mode)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def ca_command(confdir: str) -> int:
    from mitmproxy.certs import CertStore
    directory = Path(confdir).expanduser()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        CertStore.from_store(directory, "mitmproxy", 2048)
    except OSError as e:
        _err(f"cannot create the CA in {directory}: {e.strerror}")
        return EXIT_USAGE
    pem = directory / "mitmproxy-ca-cert.pem"
    print(pem)
    print(f"""
Install {pem.name} as a trusted root on the clients (the private key,
mitmproxy-ca.pem, never leaves the gateway):
  Debian/Ubuntu: cp {pem} /usr/local/share/ca-certificates/scrubgate.crt && update-ca-certificates
  Windows:       certutil -addstore root mitmproxy-ca-cert.cer   (or push it by GPO)
  macOS:         security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {pem}
  Firefox:       Settings > Privacy & Security > Certificates > Import (or policies.json)
A browser going through the proxy can also fetch it from http://mitm.it/.""", file=sys.stderr)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
