# The purpose-limitation enforcer as a container: `enforcer run` by default.
# Build: docker build -t purpose-enforcer .
# The policy and the fingerprint key are mounted, never baked in:
#   -v ./policies/default.yaml:/etc/enforcer/policy.yaml:ro  (ENFORCER_POLICY_FILE)
#   -v ./secrets/fingerprint.key:/run/secrets/fingerprint.key:ro  (ENFORCER_FINGERPRINT_KEY_FILE)

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY enforcer ./enforcer
RUN python -m venv /opt/enforcer \
 && /opt/enforcer/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/enforcer/bin/pip install --no-cache-dir .

FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 --home-dir /var/lib/enforcer --create-home enforcer
COPY --from=build /opt/enforcer /opt/enforcer
ENV PATH=/opt/enforcer/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ENFORCER_HTTP_HOST=0.0.0.0 \
    ENFORCER_HTTP_PORT=8080 \
    ENFORCER_DATA_DIR=/var/lib/enforcer/data \
    ENFORCER_POLICY_FILE=/etc/enforcer/policy.yaml \
    ENFORCER_FINGERPRINT_KEY_FILE=/run/secrets/fingerprint.key
USER 10001
WORKDIR /var/lib/enforcer
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["enforcer"]
CMD ["run"]
