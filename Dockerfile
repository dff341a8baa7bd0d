# hookstream image: one image, one console script; docker-compose.yml picks the subcommand.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY ingest ./ingest
COPY schemas ./schemas
COPY streams ./streams
COPY consumers ./consumers
RUN pip install --no-cache-dir . && useradd --create-home hookstream && mkdir -p /data && chown hookstream /data
USER hookstream
WORKDIR /data
ENTRYPOINT ["hookstream"]
