# Stands in for postgres:16: Debian bookworm's PostgreSQL 15 with the upstream image's interface
# (POSTGRES_USER, POSTGRES_PASSWORD_FILE, POSTGRES_DB; data in /var/lib/postgresql/data; pg_isready).
ARG BASE=emberwatch-offline/bookworm:12
FROM ${BASE}
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data \
 && install -d -o postgres -g postgres /var/run/postgresql
COPY postgres-start /usr/local/bin/postgres-start
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
USER postgres
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/postgres-start"]
