# syntax=docker/dockerfile:1
# fba-bridge: one image, every Procfile role. The default command serves the webhooks (web);
# run `worker`, `clock`, `db upgrade` or `simulator` instead for the other roles, e.g.
#   docker run --env-file bridge.env fba-bridge worker
# Build: docker build -t fba-bridge .   (the pinned requirements.txt decides every version)

ARG PYTHON_VERSION=3.11

# --- build: wheels for the project and every pinned dependency --------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY . .
RUN pip wheel --wheel-dir /wheels -r requirements.txt

# --- runtime: a venv holding exactly those wheels, run as an unprivileged user ----------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8000
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-index --no-deps /wheels/*.whl \
    && /opt/venv/bin/pip check
RUN groupadd --system --gid 10001 bridge \
    && useradd --system --uid 10001 --gid bridge --home-dir /srv/fba-bridge --create-home \
       --shell /usr/sbin/nologin bridge
WORKDIR /srv/fba-bridge
USER 10001:10001
EXPOSE 8000
# Probes the web role; compose.yaml turns it off for worker, clock and the one-shot roles.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]
ENTRYPOINT ["fba-bridge"]
CMD ["serve", "--host", "0.0.0.0"]
