# One image, five commands (see compose.yaml): `emberwatch run <service>`.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY emberwatch ./emberwatch
COPY services ./services
COPY simulators ./simulators
RUN pip install --no-cache-dir -c constraints.txt .
ENV EMBERWATCH_LOG_FORMAT=json
ENTRYPOINT ["emberwatch"]
