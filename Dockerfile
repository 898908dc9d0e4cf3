# syntax=docker/dockerfile:1.7
# Millrace: one image for every service and tool (`millrace run <service>`, `millrace simulate`,
# `millrace topics`). Dependencies come from requirements.lock only, so the image is reproducible.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ARG UV_VERSION=0.13.9
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never
RUN python -m pip install "uv==${UV_VERSION}" \
 && python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml requirements.lock README.md* ./
# requirements.lock also pins the dev extra; resolve the runtime subset under it as constraints,
# so every installed version is the locked one and test tooling stays out of the image.
RUN uv pip compile pyproject.toml --python-version 3.11 --constraint requirements.lock \
        --no-header --quiet -o /tmp/runtime.lock \
 && uv pip sync --python /opt/venv/bin/python /tmp/runtime.lock
COPY contracts ./contracts
COPY shared ./shared
COPY services ./services
COPY millrace ./millrace
RUN uv pip install --python /opt/venv/bin/python --no-deps . \
 && /opt/venv/bin/millrace --help > /dev/null

FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="millrace" \
      org.opencontainers.image.description="Event backbone for industrial platforms: versioned Kafka contracts and services." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/millrace/millrace"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MILLRACE_HTTP_HOST=0.0.0.0 \
    MILLRACE_HTTP_PORT=8080
RUN groupadd --system --gid 10001 millrace \
 && useradd --system --uid 10001 --gid millrace --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin millrace
COPY --from=builder /opt/venv /opt/venv
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080
# The port comes from the environment so the same image checks itself wherever it listens.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('MILLRACE_HTTP_PORT', '8080'), timeout=2)"]
ENTRYPOINT ["millrace"]
CMD ["run", "telemetry"]
