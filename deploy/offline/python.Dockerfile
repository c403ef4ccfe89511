# Stands in for python:3.11-slim: Debian's Python 3.11 as a virtual environment at /usr/local, so
# `python` and `pip` are /usr/local/bin's and sys.prefix is /usr/local, as in the upstream image.
# pip inside later builds reaches PyPI through this machine's TLS-inspecting egress: the CA bundle
# (build context file pip-ca.pem) is pip's alone (PIP_CERT); OpenSSL's own trust store is Debian's.
ARG BASE=emberwatch-offline/bookworm:12
FROM ${BASE}
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends python3 python3-venv ca-certificates libpython3.11 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && python3 -m venv /usr/local \
 && /usr/local/bin/python -c 'import sys; assert sys.prefix == "/usr/local", sys.prefix'
COPY pip-ca.pem /etc/emberwatch-build/pip-ca.pem
ENV PIP_CERT=/etc/emberwatch-build/pip-ca.pem PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
CMD ["python3"]
