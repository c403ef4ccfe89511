#!/bin/sh
# Kafka's users and ACLs for Emberwatch, applied as the cluster's admin. Idempotent: run it again after
# a password or the ACL table changes (SCRAM credentials are replaced, ACLs already there are kept).
#
#   KAFKA_INIT_BOOTSTRAP=host:port sh kafka-init.sh ACL_TABLE
#
# Runs in the apache/kafka image (kafka-configs.sh, kafka-acls.sh). Reads its secrets from files in
# $KAFKA_INIT_SECRETS (default /run/secrets), never from arguments or the environment:
# - kafka_ca_cert: the CA that signed the brokers' certificates (PEM);
# - the admin's credentials: kafka_admin_pem (a client certificate and its PKCS#8 key, PEM: mutual TLS
#   on the brokers' admin listener, compose.yaml) or kafka_admin_password (SASL/SCRAM-SHA-512 over TLS
#   as $KAFKA_INIT_ADMIN_USER, Kubernetes);
# - kafka_password_<principal>: each service principal's SCRAM-SHA-512 password (a principal whose file
#   is absent keeps the credential it has).
# Passwords and keys go only into files in a private temporary directory, removed on exit.
set -eu
table=${1:?usage: kafka-init.sh ACL_TABLE}
bootstrap=${KAFKA_INIT_BOOTSTRAP:?set KAFKA_INIT_BOOTSTRAP to the brokers host:port}
secrets=${KAFKA_INIT_SECRETS:-/run/secrets}
bin=${KAFKA_BIN:-/opt/kafka/bin}
iterations=${KAFKA_INIT_SCRAM_ITERATIONS:-8192}

umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
client=$work/admin.properties

# Only characters that need no escaping in a properties file or a JAAS option (hex, base64, ...).
check_password() {
  if [ ! -s "$1" ] || tr -d '\n' < "$1" | grep -q '[^A-Za-z0-9._~+/=-]'; then
    echo "kafka-init: $(basename "$1") is empty or holds characters other than [A-Za-z0-9._~+/=-]" >&2
    exit 1
  fi
}

[ -s "$secrets/kafka_ca_cert" ] || { echo "kafka-init: $secrets/kafka_ca_cert is missing" >&2; exit 1; }
{
  echo "ssl.truststore.type=PEM"
  echo "ssl.truststore.location=$secrets/kafka_ca_cert"
  if [ -s "$secrets/kafka_admin_pem" ]; then
    echo "security.protocol=SSL"
    echo "ssl.keystore.type=PEM"
    echo "ssl.keystore.location=$secrets/kafka_admin_pem"
  else
    check_password "$secrets/kafka_admin_password"
    admin=${KAFKA_INIT_ADMIN_USER:?set KAFKA_INIT_ADMIN_USER (or give kafka_admin_pem)}
    echo "security.protocol=SASL_SSL"
    echo "sasl.mechanism=SCRAM-SHA-512"
    printf 'sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="%s" password="%s";\n' \
      "$admin" "$(tr -d '\n' < "$secrets/kafka_admin_password")"
  fi
} > "$client"

rows=$(grep -v '^[[:space:]]*#' "$table" | grep -v '^[[:space:]]*$' || true)
[ -n "$rows" ] || { echo "kafka-init: $table holds no ACL" >&2; exit 1; }

# 1. each principal's SCRAM-SHA-512 credential, from its password file
for principal in $(printf '%s\n' "$rows" | cut -f1 | sort -u); do
  file=$secrets/kafka_password_$principal
  if [ ! -e "$file" ]; then
    echo "kafka-init: no $file: $principal keeps the credential it has"
    continue
  fi
  check_password "$file"
  printf 'SCRAM-SHA-512=iterations=%s,password=%s\n' "$iterations" "$(tr -d '\n' < "$file")" > "$work/scram"
  "$bin/kafka-configs.sh" --bootstrap-server "$bootstrap" --command-config "$client" --alter \
    --entity-type users --entity-name "$principal" --add-config-file "$work/scram" >/dev/null
  rm -f "$work/scram"
  echo "kafka-init: SCRAM-SHA-512 credential of $principal set"
done

# 2. the ACLs, one kafka-acls.sh call per row (allow only: every other request is denied)
printf '%s\n' "$rows" | while IFS="$(printf '\t')" read -r principal resource pattern name operations; do
  set --
  for op in $(printf '%s' "$operations" | tr ',' ' '); do set -- "$@" --operation "$op"; done
  "$bin/kafka-acls.sh" --bootstrap-server "$bootstrap" --command-config "$client" --add \
    --allow-principal "User:$principal" "$@" "--$resource" "$name" --resource-pattern-type "$pattern" >/dev/null
  echo "kafka-init: User:$principal $operations on $resource $pattern $name"
done
echo "kafka-init: done"
