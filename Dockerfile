# One image for the API, the worker, the migration job and the Voyager simulator.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 STELLAR_LOG_JSON=true
WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY . .
RUN pip install --no-cache-dir --no-deps --no-build-isolation -e . \
    && useradd --create-home stellar && mkdir -p /data && chown stellar /data
USER stellar
CMD ["stellar", "--help"]
