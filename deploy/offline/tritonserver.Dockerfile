# Stands in for nvcr.io/nvidia/tritonserver (not buildable here): the CPU tritonserver 2.51 of the
# PyPI wheel nvidia-pytriton (build context folder tritonserver/: bin, the python backend, the stubs
# and the wheel's shared libraries) with Debian's Python 3.11, whose stub the python backend runs.
# Like the upstream image: `tritonserver` on PATH, backends in /opt/tritonserver/backends, system
# `python3` and `pip` (Dockerfile.triton installs the models' packages with them).
ARG BASE=emberwatch-offline/bookworm:12
FROM ${BASE}
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends python3 python3-pip libpython3.11 ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /usr/share/doc
COPY tritonserver /opt/tritonserver
RUN cp /opt/tritonserver/python_backend_stubs/3.11/triton_python_backend_stub /opt/tritonserver/backends/python/ \
 && rm -rf /opt/tritonserver/python_backend_stubs \
 && ln -s /opt/tritonserver/bin/tritonserver /usr/local/bin/tritonserver \
 && useradd --uid 1000 --create-home triton-server
COPY pip-ca.pem /etc/emberwatch-build/pip-ca.pem
ENV LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu:/opt/tritonserver/lib PIP_CERT=/etc/emberwatch-build/pip-ca.pem \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN ! ldd /opt/tritonserver/bin/tritonserver /opt/tritonserver/backends/python/triton_python_backend_stub | grep 'not found'
