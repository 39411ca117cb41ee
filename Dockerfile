# CloudWizard API and worker image. Build: docker build -t cloudwizard .
# The same image runs `cloudwizard serve` (default), `cloudwizard worker` and `cloudwizard migrate`.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
WORKDIR /srv/cloudwizard
# Dependencies first, in a layer of their own, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir app && touch app/__init__.py \
    && /opt/venv/bin/pip wheel --wheel-dir /tmp/wheels . \
    && /opt/venv/bin/pip install --no-index --find-links /tmp/wheels /tmp/wheels/*.whl \
    && /opt/venv/bin/pip uninstall --yes cloudwizard \
    && rm -rf /tmp/wheels app
COPY alembic.ini ./
COPY migrations ./migrations
COPY app ./app
# In place (editable): `cloudwizard migrate` finds alembic.ini and migrations/ beside the app package.
RUN /opt/venv/bin/pip install --no-deps -e . \
    && /opt/venv/bin/python -m compileall -q app migrations

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CW_DATA_DIR=/var/lib/cloudwizard
RUN groupadd --system --gid 10001 cloudwizard \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/cloudwizard --shell /usr/sbin/nologin cloudwizard \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/cloudwizard
# Code and venv stay owned by root: the service user can read them, not change them.
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /srv/cloudwizard /srv/cloudwizard
WORKDIR /srv/cloudwizard
USER 10001:10001
VOLUME ["/var/lib/cloudwizard"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
CMD ["cloudwizard", "serve", "--host", "0.0.0.0", "--port", "8000"]
