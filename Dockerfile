# The purpose-limitation enforcer as a container: `enforcer run` by default.
# Build: docker build -t purpose-enforcer .
# The policy and the fingerprint key are mounted, never baked in:
#   -v ./policies/default.yaml:/etc/enforcer/policy.yaml:ro  (ENFORCER_POLICY_FILE)
#   -v ./secrets/fingerprint.key:/run/secrets/fingerprint.key:ro  (ENFORCER_FINGERPRINT_KEY_FILE)
# Dependencies come from requirements.lock only, every file checked against its hash;
# the package itself is built without build isolation from the locked setuptools and
# mypy (whose mypyc compiles the decision core: setup.py), so nothing unpinned is
# downloaded. The build stage is the full Python image for its C compiler; the image
# that runs is the slim one, with the built virtualenv copied in. Regenerate the lock
# and sbom.cdx.json with scripts/lock.sh (docs/deploy.md, "Container image").

FROM python:3.11-bookworm AS build
WORKDIR /src
COPY requirements.lock ./
RUN python -m venv /opt/enforcer \
 && /opt/enforcer/bin/pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml setup.py README.md ./
COPY enforcer ./enforcer
RUN /opt/enforcer/bin/pip install --no-cache-dir --no-deps --no-build-isolation .

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="purpose-enforcer" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN useradd --system --uid 10001 --home-dir /var/lib/enforcer --create-home enforcer
COPY --from=build /opt/enforcer /opt/enforcer
# The software bill of materials of what /opt/enforcer holds (CycloneDX JSON).
COPY sbom.cdx.json /opt/enforcer/sbom.cdx.json
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
# The port is read from ENFORCER_HTTP_PORT when the check runs, so a container that
# serves elsewhere (the lag exporter on 9308 in docker-compose.yml) is checked there.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('ENFORCER_HTTP_PORT') or '8080'; sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["enforcer"]
CMD ["run"]
