# Stands in for prom/prometheus: Debian bookworm's Prometheus 2.42, run as its own user; wget for the
# healthcheck, as in the upstream image (busybox).
ARG BASE=emberwatch-offline/bookworm:12
FROM ${BASE}
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends prometheus wget \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /usr/share/doc \
 && install -d -o prometheus -g prometheus /prometheus
USER prometheus
WORKDIR /prometheus
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
