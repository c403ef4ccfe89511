# Stands in for node:20-slim in the console's build stage (it only runs `npm ci`): Debian's Node.js
# and npm. npm reaches its registry through this machine's egress with the CA bundle pip-ca.pem.
ARG BASE=emberwatch-offline/bookworm:12
FROM ${BASE}
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends nodejs npm ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
COPY pip-ca.pem /etc/emberwatch-build/pip-ca.pem
ENV NODE_EXTRA_CA_CERTS=/etc/emberwatch-build/pip-ca.pem
CMD ["node"]
