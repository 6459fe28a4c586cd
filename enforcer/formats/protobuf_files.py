"""The files every Protobuf schema may import without the registry sending them: the
well-known types of the protobuf runtime and ``confluent/meta.proto``, whose
``(confluent.field_meta).tags`` field option carries a field's schema tags
(docs/formats.md, "Protobuf").

confluent-kafka's serializer registers neither by default (it skips "known types"),
so a reader has to bring its own. ``confluent/meta.proto`` is rebuilt here field for
field (as published by Confluent): confluent-kafka ships it only inside its
schema-registry package, whose import pulls in an HTTP client stack the enforcer does
not need.
"""

from __future__ import annotations

from google.protobuf import (
    any_pb2,
    api_pb2,
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    empty_pb2,
    field_mask_pb2,
    source_context_pb2,
    struct_pb2,
    timestamp_pb2,
    type_pb2,
    wrappers_pb2,
)

META_FILE = "confluent/meta.proto"
META_EXTENSION_NUMBER = 1088
"""The field number of ``confluent.field_meta`` (and its file, message, enum and enum
value siblings) in their options messages."""
OPTIONS_VIEW = "enforcer.formats.FieldOptionsView"
"""A message that reads a field's options with ``field_meta`` as a plain field, so the
tags are read without registering an extension in any pool."""

# In import order: a file after the files it imports.
_WELL_KNOWN = (
    descriptor_pb2,
    any_pb2,
    source_context_pb2,
    type_pb2,
    api_pb2,
    duration_pb2,
    empty_pb2,
    field_mask_pb2,
    struct_pb2,
    timestamp_pb2,
    wrappers_pb2,
)

_Field = descriptor_pb2.FieldDescriptorProto


def is_builtin(name: str) -> bool:
    """Whether an import is one confluent-kafka never registers (and so a reader must
    know itself): Confluent's own files and Google's common types."""
    return name.startswith(("confluent/", "google/protobuf/", "google/type/"))


def base_pool() -> descriptor_pool.DescriptorPool:
    """A new pool holding the well-known types, ``confluent/meta.proto`` and the
    options view; each schema gets its own pool (file names of different schemas may
    be the same)."""
    pool = descriptor_pool.DescriptorPool()
    for module in _WELL_KNOWN:
        pool.AddSerializedFile(module.DESCRIPTOR.serialized_pb)
    pool.Add(_meta_file())
    pool.Add(_options_view_file())
    return pool


def _meta_file() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(
        name=META_FILE,
        package="confluent",
        dependency=["google/protobuf/descriptor.proto"],
        syntax="proto3",
    )
    file.options.go_package = "../confluent"
    meta = file.message_type.add(name="Meta")
    meta.field.add(name="doc", number=1, type=_Field.TYPE_STRING, label=_Field.LABEL_OPTIONAL)
    meta.field.add(
        name="params",
        number=2,
        type=_Field.TYPE_MESSAGE,
        label=_Field.LABEL_REPEATED,
        type_name=".confluent.Meta.ParamsEntry",
    )
    meta.field.add(name="tags", number=3, type=_Field.TYPE_STRING, label=_Field.LABEL_REPEATED)
    meta.field.add(
        name="rules",
        number=4,
        type=_Field.TYPE_MESSAGE,
        label=_Field.LABEL_REPEATED,
        type_name=".confluent.Rule",
    )
    entry = meta.nested_type.add(name="ParamsEntry")
    entry.field.add(name="key", number=1, type=_Field.TYPE_STRING, label=_Field.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=_Field.TYPE_STRING, label=_Field.LABEL_OPTIONAL)
    entry.options.map_entry = True
    rule = file.message_type.add(name="Rule")
    for number, name in enumerate(("name", "doc", "expr", "sql"), start=1):
        rule.field.add(
            name=name, number=number, type=_Field.TYPE_STRING, label=_Field.LABEL_OPTIONAL
        )
    for name, extendee in (
        ("file_meta", "FileOptions"),
        ("message_meta", "MessageOptions"),
        ("field_meta", "FieldOptions"),
        ("enum_meta", "EnumOptions"),
        ("enum_value_meta", "EnumValueOptions"),
    ):
        file.extension.add(
            name=name,
            number=META_EXTENSION_NUMBER,
            type=_Field.TYPE_MESSAGE,
            label=_Field.LABEL_OPTIONAL,
            type_name=".confluent.Meta",
            extendee=f".google.protobuf.{extendee}",
        )
    return file


def _options_view_file() -> descriptor_pb2.FileDescriptorProto:
    package, _, name = OPTIONS_VIEW.rpartition(".")
    file = descriptor_pb2.FileDescriptorProto(
        name="enforcer/formats/field_options_view.proto",
        package=package,
        dependency=[META_FILE],
        syntax="proto3",
    )
    view = file.message_type.add(name=name)
    view.field.add(
        name="field_meta",
        number=META_EXTENSION_NUMBER,
        type=_Field.TYPE_MESSAGE,
        label=_Field.LABEL_OPTIONAL,
        type_name=".confluent.Meta",
    )
    return file
