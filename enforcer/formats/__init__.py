"""Record formats between the bytes and the decision: field mappings, schema tags, the
Confluent wire framing with Avro, Protobuf and JSON Schema bodies, and the schema
registry they come from (docs/formats.md)."""
