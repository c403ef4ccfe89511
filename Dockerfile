# One image, six commands (see compose.yaml): `emberwatch run <service>` and `emberwatch console`.
# The console's front-end packages come from npm, in a stage of their own (nothing from a CDN).
FROM node:20-slim AS web
WORKDIR /web
COPY services/console/web/package.json services/console/web/package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY emberwatch ./emberwatch
COPY services ./services
COPY simulators ./simulators
RUN pip install --no-cache-dir -c constraints.txt .
# where the console looks for them: <Python prefix>/share/emberwatch/console-web/node_modules
COPY --from=web /web/node_modules /usr/local/share/emberwatch/console-web/node_modules
ENV EMBERWATCH_LOG_FORMAT=json
ENTRYPOINT ["emberwatch"]
