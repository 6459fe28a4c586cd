#!/usr/bin/env bash
# The Kafka ACLs the enforcer needs, and no more. Run with an admin's client config:
#   PRINCIPAL=User:enforcer GROUP=purpose-enforcer BOOTSTRAP=kafka:9093 \
#   ADMIN_CONFIG=admin.properties bash deploy/acls.sh
# Topic names are the enforcer's defaults unless SOURCE_TOPIC, SINK_TOPIC,
# VIOLATIONS_TOPIC, DEADLETTER_TOPIC, METRICS_TOPIC, LEDGER_TOPIC or EXPOSURE_TOPIC say
# otherwise.
#
#   read      identity.events (the source) and the consumer group
#   read      the ledger topic, when LEDGER_TOPIC is set (ENFORCER_LEDGER_TOPIC, e.g.
#             identity.purposes): restored and followed, never written
#   write     audience.building, enforcer.violations, enforcer.deadletter, enforcer.metrics
#   describe  every one of those topics (metadata, offsets for lag; a topic the
#             worker may not describe stops it at start, exit 2, naming the grant)
#   describe-configs  the sink, violations and dead-letter topics: the worker reads
#             their max.message.bytes at start, to fit outputs to them
#   transactional ids  "<GROUP>-" prefixed: each worker has one transactional
#             producer with id "<group>-<instance id>"
#   idempotent writes are covered by the transactional-id grant (Kafka >= 3.0)
#   read, write  the exposure topic, when EXPOSURE_TOPIC is set (ENFORCER_EXPOSURE_TOPIC,
#             e.g. enforcer.exposure): restored at assignment, written in transactions;
#             describe-configs too (its max.message.bytes bounds a subject's record)
# Nothing else: no topic creation (create topics ahead, without --create-topics),
# no access to other groups, topics or cluster operations.
set -euo pipefail
: "${PRINCIPAL:?User:<name> the enforcer authenticates as}"
: "${GROUP:=purpose-enforcer}"
: "${BOOTSTRAP:?host:port of a listener}"
ACLS=(kafka-acls.sh --bootstrap-server "$BOOTSTRAP")
[[ -n "${ADMIN_CONFIG:-}" ]] && ACLS+=(--command-config "$ADMIN_CONFIG")

"${ACLS[@]}" --add --allow-principal "$PRINCIPAL" --operation Read --operation Describe \
  --topic "${SOURCE_TOPIC:-identity.events}"
if [[ -n "${LEDGER_TOPIC:-}" ]]; then
  "${ACLS[@]}" --add --allow-principal "$PRINCIPAL" --operation Read --operation Describe \
    --topic "$LEDGER_TOPIC"
fi
if [[ -n "${EXPOSURE_TOPIC:-}" ]]; then
  "${ACLS[@]}" --add --allow-principal "$PRINCIPAL" --operation Read --operation Write \
    --operation Describe --operation DescribeConfigs --topic "$EXPOSURE_TOPIC"
fi
"${ACLS[@]}" --add --allow-principal "$PRINCIPAL" --operation Read --group "$GROUP"
for topic in "${SINK_TOPIC:-audience.building}" "${VIOLATIONS_TOPIC:-enforcer.violations}" \
             "${DEADLETTER_TOPIC:-enforcer.deadletter}" "${METRICS_TOPIC:-enforcer.metrics}"; do
  "${ACLS[@]}" --add --allow-principal "$PRINCIPAL" --operation Write --operation Describe \
    --topic "$topic"
done
for topic in "${SINK_TOPIC:-audience.building}" "${VIOLATIONS_TOPIC:-enforcer.violations}" \
             "${DEADLETTER_TOPIC:-enforcer.deadletter}"; do
  "${ACLS[@]}" --add --allow-principal "$PRINCIPAL" --operation DescribeConfigs --topic "$topic"
done
"${ACLS[@]}" --add --allow-principal "$PRINCIPAL" --operation Write --operation Describe \
  --transactional-id "$GROUP-" --resource-pattern-type prefixed
