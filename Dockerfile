# scrubgate: container image for the egress gateway.
#
# Build (from the repository root):
#   docker build -t scrubgate .
#
# Run (proxy on :8080, Prometheus metrics + /healthz + /readyz on :9464). The
# named volume keeps the mitmproxy CA in /var/lib/scrubgate across restarts and
# upgrades, so the CA that clients trust stays the same:
#   docker run -p 8080:8080 -p 9464:9464 -v scrubgate-ca:/var/lib/scrubgate scrubgate
#
# Get the CA certificate that clients must trust (after the first start):
#   docker run --rm -v scrubgate-ca:/var/lib/scrubgate --entrypoint cat scrubgate \
#       /var/lib/scrubgate/mitmproxy-ca-cert.pem > scrubgate-ca.pem
#
# Another shipped policy, or your own one (mounted read-only):
#   docker run ... scrubgate run --listen-host 0.0.0.0 --metrics-host 0.0.0.0 \
#       --confdir /var/lib/scrubgate --policy /etc/scrubgate/policies/strict.yaml
#   (the arguments after the image name replace CMD, so repeat them all.)
#
# Check a policy without starting the proxy:
#   docker run --rm scrubgate policy check /etc/scrubgate/policies/default.yaml

# python:3.12-slim on Debian 12 "bookworm". The -bookworm suffix pins the
# Debian release: the bare 3.12-slim tag moves to newer Debian releases.
FROM python:3.12-slim-bookworm

# OMP_THREAD_LIMIT=1: one OpenMP thread per Tesseract process. The gateway
# already runs OCR for several requests at once; more threads per process
# oversubscribe the CPUs and make OCR slower, not faster.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    OMP_THREAD_LIMIT=1 \
    SCRUBGATE_POLICY_DIR=/etc/scrubgate/policies

# Tesseract OCR with the English, Dutch, German and French models (the same
# set as scripts/setup.sh). Not pinned to Debian versions: those pins break as
# soon as the archive publishes a security update.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        tesseract-ocr \
        tesseract-ocr-eng \
        tesseract-ocr-nld \
        tesseract-ocr-deu \
        tesseract-ocr-fra \
    && rm -rf /var/lib/apt/lists/*

# Unprivileged user that runs the gateway (uid/gid 10001).
RUN groupadd --system --gid 10001 scrubgate \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/scrubgate \
        --no-create-home --shell /usr/sbin/nologin scrubgate \
    && mkdir -p /var/lib/scrubgate \
    && chown scrubgate:scrubgate /var/lib/scrubgate \
    && chmod 0700 /var/lib/scrubgate

WORKDIR /src

# Locked dependencies first, in their own layer, so that code changes do not
# reinstall them. Only the runtime ones: the lock also holds the test and
# benchmark tools (scikit-image, Faker, ...), which an image does not need,
# so it is used as constraints on pyproject's runtime list. The lock also pins
# hatchling (the build backend).
COPY requirements.lock pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > runtime.txt \
    && pip install --no-cache-dir -c requirements.lock -r runtime.txt hatchling

# scrubgate itself. --no-build-isolation builds the wheel with the hatchling
# installed from the lock above instead of fetching build dependencies again.
COPY README.md ./
COPY addons/ ./addons/
COPY policies/ ./policies/
RUN pip install --no-cache-dir --no-deps --no-build-isolation . \
    && mkdir -p /etc/scrubgate \
    && cp -r policies /etc/scrubgate/policies \
    && chmod -R a+rX /etc/scrubgate \
    && rm -rf /src

# /var/lib/scrubgate is the mitmproxy confdir: the CA (private key included)
# is created there on first start. It is owned by, and only readable by, the
# scrubgate user (see above), and a volume so the CA outlives the container.
# A new named volume takes that owner and mode from the image.
VOLUME ["/var/lib/scrubgate"]

USER 10001:10001
WORKDIR /var/lib/scrubgate

# 8080: the proxy. 9464: /metrics, /healthz (liveness), /readyz (readiness).
EXPOSE 8080 9464

# Liveness through /healthz with the standard library (slim has no curl).
# ProxyHandler({}) ignores any HTTP(S)_PROXY set in the container, which would
# otherwise send this local request to a proxy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:9464/healthz', timeout=4)"]

ENTRYPOINT ["scrubgate"]
CMD ["run", "--listen-host", "0.0.0.0", "--metrics-host", "0.0.0.0", "--confdir", "/var/lib/scrubgate"]
