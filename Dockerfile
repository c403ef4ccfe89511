# One image, six commands (see compose.yaml): `emberwatch run <service>` and `emberwatch console`;
# compose.yaml also runs the MLflow server and its one-shot init jobs from it.
# The console's front-end packages come from npm, in a stage of their own (nothing from a CDN).
# The base images are build arguments so that a host without a registry builds on its own
# (compose.offline.yaml: deploy/offline/build-images makes stand-ins from Debian).
ARG PYTHON_IMAGE=python:3.11-slim
ARG NODE_IMAGE=node:20-slim
FROM ${NODE_IMAGE} AS web
WORKDIR /web
COPY services/console/web/package.json services/console/web/package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM ${PYTHON_IMAGE}
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY emberwatch ./emberwatch
COPY services ./services
COPY simulators ./simulators
# [deploy]: psycopg2 (the MLflow server's PostgreSQL store) and Flask-WTF (its basic-auth app).
RUN pip install --no-cache-dir -c constraints.txt ".[deploy]"
# The trainer's GPU image (compose.yaml: TENSORFLOW="tensorflow[and-cuda]==2.21.0") swaps
# tensorflow-cpu for TensorFlow with its CUDA libraries; the other services keep the CPU build.
ARG TENSORFLOW=""
RUN if [ -n "$TENSORFLOW" ]; then \
      pip uninstall -y tensorflow-cpu && pip install --no-cache-dir -c constraints.txt "$TENSORFLOW" \
      && python -c 'import tensorflow as tf; print("TensorFlow", tf.__version__, "built with CUDA:", tf.test.is_built_with_cuda())'; \
    fi
# The gatekeeper copies the Triton model templates from <REPO_ROOT>/triton_models
# (services/gatekeeper/serving/repository.py), and REPO_ROOT of an installed package is the
# directory that holds it (site-packages): link the templates there and check that every one is found.
# `python -P`: the installed package, not the copy in the working directory /app that `-c` would import.
COPY triton_models ./triton_models
RUN ln -s /app/triton_models "$(python -P -c 'from emberwatch.common.config import REPO_ROOT; print(REPO_ROOT)')/triton_models" \
 && python -P -c 'from services.gatekeeper.serving.repository import TEMPLATES, TEMPLATE_FILES; \
missing = [f for f in TEMPLATE_FILES if not (TEMPLATES / f).is_file()]; assert not missing, missing'
# where the console looks for them: <Python prefix>/share/emberwatch/console-web/node_modules
COPY --from=web /web/node_modules /usr/local/share/emberwatch/console-web/node_modules
ENV EMBERWATCH_LOG_FORMAT=json
# Runs as an unprivileged user (uid 10001, as deploy/k8s's runAsUser), owning only what it writes: the
# state, the Keras cache and the Triton model repository (compose's named volumes take these owners
# when they are first created; a volume made by an older, root image needs a one-off chown -R 10001).
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/emberwatch emberwatch \
 && mkdir -p /state /keras /models && chown emberwatch:emberwatch /state /keras /models
USER 10001:10001
ENTRYPOINT ["emberwatch"]
