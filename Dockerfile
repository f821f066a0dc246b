# One image for every Tillit process (coordinator, SuperLink, nodes); the command picks the role.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 FLWR_TELEMETRY_ENABLED=0
WORKDIR /opt/tillit
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir -r requirements.lock
COPY common ./common
COPY tillit ./tillit
COPY schemas ./schemas
COPY validation ./validation
COPY nodes ./nodes
COPY federation ./federation
COPY coordinator ./coordinator
RUN pip install --no-cache-dir --no-deps --no-build-isolation . && useradd --create-home tillit
USER tillit
ENTRYPOINT ["tillit"]
