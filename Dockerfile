# One image for all four baocao services; docker-compose.yml picks the service with `command:`
# (python -m services.<name>). Build context is the repository root.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app

# dependencies first: this layer is reused until requirements.lock changes
COPY requirements.lock pyproject.toml ./
RUN pip install --no-cache-dir -r requirements.lock

COPY contracts/ contracts/
COPY services/ services/
COPY data/ data/
# Run from /app (python -m puts it first on sys.path): the default plan file is found at
# /app/data/plans, next to the code, as in a checkout.
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin baocao

USER baocao

# submissions 8000, deadlines 8001, notify 8002, consolidate 8003
EXPOSE 8000 8001 8002 8003

CMD ["python", "-m", "services.submissions"]
