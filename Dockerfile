# Krypton's image: the locked Python dependencies and the pages' npm libraries, run as a
# non-root user. One image serves every role: `krypton serve`, `krypton worker`,
# `krypton signer run` (deploy/compose.yaml, deploy/helm/krypton).
#
#   docker build -t krypton:local .

# --- the pages' browser libraries (TON Connect UI), from npm at build time, never a CDN ---
FROM node:20-bookworm-slim AS assets
WORKDIR /build/web-assets
COPY web-assets/package.json web-assets/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

# --- the Python environment, exactly as uv.lock pins it ---
FROM python:3.11-slim-bookworm AS python
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT=/opt/krypton/.venv
RUN pip install --no-cache-dir uv
WORKDIR /opt/krypton
COPY pyproject.toml uv.lock README.md ./
# Dependencies first (a layer that survives code changes), then the project itself.
RUN uv sync --frozen --no-dev --no-install-project
COPY src ./src
RUN uv sync --frozen --no-dev

# --- what runs: no compiler, no uv, no npm ---
FROM python:3.11-slim-bookworm
# pg_dump/pg_restore for `krypton backup` on PostgreSQL.
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/krypton --create-home krypton
WORKDIR /opt/krypton
COPY --from=python /opt/krypton /opt/krypton
COPY --from=assets /build/web-assets/node_modules ./web-assets/node_modules
ENV PATH=/opt/krypton/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    KRYPTON_DATA_DIR=/var/lib/krypton \
    KRYPTON_HOST=0.0.0.0 \
    KRYPTON_PORT=8000 \
    KRYPTON_LOG_FORMAT=json
USER krypton
VOLUME ["/var/lib/krypton"]
EXPOSE 8000
# /healthz answers 503 when Krypton cannot take payments; python is there, curl is not.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["krypton"]
CMD ["serve"]
