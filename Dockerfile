# The consent-ledger services (intake, projector, CLI) for docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY events events
COPY projections projections
COPY services services
# Not tools/: the local stack, the benchmark and the audience consumer are for development.
RUN pip install --no-cache-dir .
ENTRYPOINT ["consent-ledger"]
