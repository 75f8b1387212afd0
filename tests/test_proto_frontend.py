"""The .proto front end against protoc, the oracle.

Every schema of the corpus (tests/proto/: our own schemas covering every
construct of proto2 and proto3, the gRPC health schema, and google's
well-known types; and the gRPC interop schemas fastnet.grpc ships) is compiled by fastnet and by protoc
(``python -m grpc_tools.protoc --descriptor_set_out --include_imports``):
the FileDescriptorSets must be byte-identical, and equal once decoded by
google.protobuf (which names the first differing field when they are not).
Every error case is compiled by both too: fastnet's error lines are
protoc's, every one of them, text and position (after a syntax error both
skip the statement and go on).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

import fastnet.proto
from fastnet.errors import ProtoSchemaError
from fastnet.proto import descriptor as d
from fastnet.proto.frontend import parse_files
from fastnet.proto.parser import json_name, map_entry_name
from fastnet.proto.writer import decode_set, encode_set

import grpc_tools

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "proto"
#: The gRPC interop protos: the copies fastnet.grpc ships.
GRPC_PROTOS = ROOT / "fastnet" / "grpc" / "protos"
PROTOC_INCLUDE = Path(grpc_tools.__file__).parent / "_proto"
WELL_KNOWN = ["any", "api", "descriptor", "duration", "empty", "field_mask", "source_context",
              "struct", "timestamp", "type", "wrappers"]

#: (include dir, files) compiled together into one set
SCHEMAS = {
    "everything2": (CORPUS, ["corpus/everything2.proto"]),
    "everything3": (CORPUS, ["corpus/everything3.proto"]),
    "options2": (CORPUS, ["corpus/options2.proto"]),
    "scoping": (CORPUS, ["corpus/scope/outer.proto"]),
    "health": (CORPUS, ["grpc/health/v1/health.proto"]),
    "grpc_testing": (GRPC_PROTOS, ["src/proto/grpc/testing/test.proto"]),
    "several_inputs": (CORPUS, ["grpc/health/v1/health.proto", "corpus/everything3.proto",
                                "corpus/sub/dep2.proto"]),
}


def protoc(include: Path, files: list[str], out: Path, cwd: Path = ROOT
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{include}",
         f"--descriptor_set_out={out}", "--include_imports", *files],
        capture_output=True, text=True, cwd=cwd, timeout=120)


def assert_same_set(mine: bytes, theirs: bytes) -> None:
    ours = descriptor_pb2.FileDescriptorSet.FromString(mine)
    ref = descriptor_pb2.FileDescriptorSet.FromString(theirs)
    assert [f.name for f in ours.file] == [f.name for f in ref.file]
    for got, want in zip(ours.file, ref.file):
        assert got == want, f"{want.name} differs"
    assert mine == theirs


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_corpus_equals_protoc(name: str, tmp_path: Path) -> None:
    include, files = SCHEMAS[name]
    result = protoc(include, [str(include / f) for f in files], tmp_path / "protoc.pb")
    assert result.returncode == 0, result.stderr
    parsed = parse_files([include / f for f in files], [include])
    theirs = (tmp_path / "protoc.pb").read_bytes()
    assert_same_set(encode_set(parsed), theirs)
    # and read back, protoc's set is the very objects fastnet built
    assert decode_set(theirs) == parsed


def test_decode_set_refuses_truncated_input() -> None:
    data = fastnet.proto.descriptor_set([CORPUS / "grpc/health/v1/health.proto"], [CORPUS])
    for cut in (1, 5, len(data) // 2, len(data) - 1):
        with pytest.raises(ValueError):
            decode_set(data[:cut])


def test_input_named_relative_to_include_path(tmp_path: Path) -> None:
    """As protoc: an input that is not on disk is a name inside -I."""
    assert [f.name for f in parse_files(["grpc/health/v1/health.proto"], [CORPUS])] == [
        "grpc/health/v1/health.proto"]
    with pytest.raises(ProtoSchemaError, match="Could not make proto path relative: "
                                               "nope/x.proto: No such file or directory"):
        parse_files(["nope/x.proto"], [CORPUS])


@pytest.mark.parametrize("name", WELL_KNOWN)
def test_well_known_types_equal_protoc(name: str, tmp_path: Path) -> None:
    """The bundled copies resolve with no include path and describe what
    protoc's own copies do."""
    path = f"google/protobuf/{name}.proto"
    result = protoc(PROTOC_INCLUDE, [str(PROTOC_INCLUDE / path)], tmp_path / "protoc.pb")
    assert result.returncode == 0, result.stderr
    mine = encode_set(parse_files([path], include=[]))
    assert_same_set(mine, (tmp_path / "protoc.pb").read_bytes())


def test_well_known_types_import_without_include_path(tmp_path: Path) -> None:
    (tmp_path / "svc.proto").write_text(
        'syntax = "proto3";\nimport "google/protobuf/empty.proto";\n'
        "import \"google/protobuf/timestamp.proto\";\n"
        "message At { google.protobuf.Timestamp when = 1; }\n"
        "service S { rpc Now(google.protobuf.Empty) returns (At); }\n")
    files = parse_files([tmp_path / "svc.proto"], [tmp_path])
    assert [f.name for f in files] == ["google/protobuf/empty.proto",
                                       "google/protobuf/timestamp.proto", "svc.proto"]
    method = files[-1].service[0].method[0]
    assert (method.input_type, method.output_type) == (".google.protobuf.Empty", ".At")


def test_descriptors_as_the_contract_has_them() -> None:
    """A few facts of the schema model read directly (the same objects the
    wire codec compiles)."""
    files = parse_files([CORPUS / "corpus/everything3.proto"], [CORPUS])
    top = files[-1]
    assert top.syntax == "proto3" and top.package == "fastnet.corpus.p3"
    msg = next(m for m in top.message_type if m.name == "AllTypes")
    by_name = {f.name: f for f in msg.field}
    o_int32 = by_name["o_int32"]
    assert o_int32.proto3_optional and msg.oneof_decl[o_int32.oneof_index].name == "_o_int32"
    assert by_name["f_int32"].json_name == "int32Custom"
    assert d.option_varint(by_name["r_unpacked"].options, 2) == 0          # packed=false
    entry = next(m for m in msg.nested_type if m.name == "MStringInt32Entry")
    assert d.option_varint(entry.options, 7) == 1                          # map_entry
    assert by_name["m_string_int32"].type_name == ".fastnet.corpus.p3.AllTypes.MStringInt32Entry"
    assert by_name["f_enum"].type == d.FieldType.TYPE_ENUM
    assert by_name["any"].type_name == ".google.protobuf.Any"
    # the map entry sits among the nested types where its field was declared
    assert [m.name for m in msg.nested_type] == [
        "MStringInt32Entry", "MInt32MessageEntry", "MBoolEnumEntry", "MUint64BytesEntry",
        "Nested"]


def test_names() -> None:
    assert json_name("foo_bar_baz") == "fooBarBaz"
    assert json_name("_x") == "X"
    assert json_name("a__b") == "aB"
    assert map_entry_name("snake_case_map") == "SnakeCaseMapEntry"
    assert map_entry_name("by_name") == "ByNameEntry"


def test_cli_writes_protocs_bytes(tmp_path: Path) -> None:
    files = ["corpus/everything2.proto", "grpc/health/v1/health.proto"]
    result = protoc(CORPUS, [str(CORPUS / f) for f in files], tmp_path / "protoc.pb")
    assert result.returncode == 0, result.stderr
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run(
        [sys.executable, "-m", "fastnet.proto", "descriptor-set",
         *[str(CORPUS / f) for f in files], "-I", str(CORPUS), "-o", str(tmp_path / "out.pb")],
        capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out.pb").read_bytes() == (tmp_path / "protoc.pb").read_bytes()


def test_cli_reports_errors_as_protoc(tmp_path: Path) -> None:
    (tmp_path / "bad.proto").write_text('syntax = "proto3";\nmessage A { Nope n = 1; }\n')
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run(
        [sys.executable, "-m", "fastnet.proto", "descriptor-set", "bad.proto",
         "-o", "out.pb"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert run.returncode == 1
    assert run.stderr == 'bad.proto:2:13: "Nope" is not defined.\n'
    assert not (tmp_path / "out.pb").exists()


def test_descriptor_set_helper_and_load(tmp_path: Path) -> None:
    path = CORPUS / "grpc/health/v1/health.proto"
    data = fastnet.proto.descriptor_set([path], [CORPUS])
    assert data == encode_set(parse_files([path], [CORPUS]))
    # load() builds message classes from the front end's descriptors: they
    # speak the wire as google.protobuf does (grpc_health_v1's own bytes).
    health = fastnet.proto.load(path, include=[CORPUS])
    request = health.grpc.health.v1.HealthCheckRequest(service="fastnet")
    assert request.SerializeToString() == b"\n\x07fastnet"
    reply = health.grpc.health.v1.HealthCheckResponse.FromString(b"\x08\x01")
    assert reply.status == health.grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING == 1


def test_input_outside_include_path(tmp_path: Path) -> None:
    (tmp_path / "x.proto").write_text('syntax = "proto3";\n')
    with pytest.raises(ProtoSchemaError, match="does not reside within any path"):
        parse_files([tmp_path / "x.proto"], [CORPUS])


IMPORT_CASES = {
    "cycle": ({"a.proto": 'syntax = "proto3";\nimport "b.proto";\nmessage A { B b = 1; }\n',
               "b.proto": 'syntax = "proto3";\nimport "a.proto";\nmessage B { A a = 1; }\n'},
              ["a.proto"]),
    "failed_imports": (
        {"c.proto": 'syntax = "proto3";\nimport "bad.proto";\nimport "missing.proto";\n'
                    'import "good.proto";\nmessage A { B b = 1; G g = 2; }\n',
         "bad.proto": 'syntax = "proto3";\nmessage B { Nope n = 1; }\n',
         "good.proto": 'syntax = "proto3";\nmessage G { }\n'},
        ["c.proto"]),
    "first_failing_input": ({"x.proto": 'syntax = "proto3";\nmessage X { Nope n = 1; }\n',
                             "y.proto": 'syntax = "proto3";\nmessage Y { Nope n = 1; }\n'},
                            ["x.proto", "y.proto"]),
}


@pytest.mark.parametrize("name", sorted(IMPORT_CASES))
def test_import_errors_as_protoc(name: str, tmp_path: Path) -> None:
    """A file whose import failed is still checked (the imported names are
    then undefined); a cycle is named; the first input that fails ends it."""
    files, inputs = IMPORT_CASES[name]
    for file_name, source in files.items():
        (tmp_path / file_name).write_text(source)
    with pytest.raises(ProtoSchemaError) as info:
        parse_files([tmp_path / i for i in inputs], [tmp_path])
    result = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{tmp_path}",
         f"--descriptor_set_out={tmp_path / 'out.pb'}", *[str(tmp_path / i) for i in inputs]],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert info.value.errors == result.stderr.splitlines()


#: name -> (source of <name>.proto, fastnet's first error line)
ERRORS = {
    'dup_number': (
        'syntax = "proto3";\nmessage A {\n  int32 a = 1;\n  int32 b = 1;\n}\n',
        'dup_number.proto:4:13: Field number 1 has already been used in "A" by field "a". Next available field number is 2.'),
    'dup_name': (
        'syntax = "proto3";\nmessage A {\n  int32 a = 1;\n  string a = 2;\n}\n',
        'dup_name.proto:4:10: "a" is already defined in "A".'),
    'dup_message': (
        'syntax = "proto3";\npackage p;\nmessage A {}\nmessage A {}\n',
        'dup_message.proto:4:9: "A" is already defined in "p".'),
    'number_zero': (
        'syntax = "proto3";\nmessage A { int32 a = 0; }\n',
        'number_zero.proto:2:23: Field numbers must be positive integers.'),
    'number_too_big': (
        'syntax = "proto3";\nmessage A { int32 a = 536870912; }\n',
        'number_too_big.proto:2:23: Field numbers cannot be greater than 536870911.'),
    'number_reserved_range': (
        'syntax = "proto3";\nmessage A { int32 a = 19500; }\n',
        'number_reserved_range.proto: Field numbers 19000 through 19999 are reserved for the protocol buffer library implementation.'),
    'unknown_type': (
        'syntax = "proto3";\npackage p;\nmessage A {\n  Missing m = 1;\n}\n',
        'unknown_type.proto:4:3: "Missing" is not defined.'),
    'unknown_nested': (
        'syntax = "proto3";\nmessage A { B.C a = 1; message B {} }\n',
        'unknown_nested.proto:2:13: "B.C" is resolved to "A.B.C", which is not defined. The innermost scope is searched first in name resolution. Consider using a leading \'.\'(i.e., ".B.C") to start from the outermost scope.'),
    'not_a_type': (
        'syntax = "proto3";\nmessage A { int32 x = 1; x y = 2; }\n',
        'not_a_type.proto:2:26: "x" is not defined.'),
    'map_float_key': (
        'syntax = "proto3";\nmessage A { map<float, int32> m = 1; }\n',
        'map_float_key.proto:2:13: Key in map fields cannot be float/double, bytes or message types.'),
    'map_bytes_key': (
        'syntax = "proto3";\nmessage A { map<bytes, int32> m = 1; }\n',
        'map_bytes_key.proto:2:13: Key in map fields cannot be float/double, bytes or message types.'),
    'map_message_key': (
        'syntax = "proto3";\nmessage A { map<A, int32> m = 1; }\n',
        'map_message_key.proto:2:13: Key in map fields cannot be float/double, bytes or message types.'),
    'map_enum_key': (
        'syntax = "proto3";\nenum E { Z = 0; }\nmessage A { map<E, int32> m = 1; }\n',
        'map_enum_key.proto:3:13: Key in map fields cannot be enum types.'),
    'oneof_repeated': (
        'syntax = "proto3";\nmessage A {\n  oneof o {\n    repeated int32 x = 1;\n  }\n}\n',
        'oneof_repeated.proto:4:5: Fields in oneofs must not have labels (required / optional / repeated).'),
    'oneof_map': (
        'syntax = "proto3";\nmessage A { oneof o { map<int32, int32> m = 1; } }\n',
        'oneof_map.proto:2:26: Map fields are not allowed in oneofs.'),
    'reserved_number': (
        'syntax = "proto3";\nmessage A {\n  reserved 2 to 4;\n  int32 a = 3;\n}\n',
        'reserved_number.proto:3:12: Field "a" uses reserved number 3.'),
    'reserved_name': (
        'syntax = "proto3";\nmessage A {\n  reserved "a";\n  int32 a = 3;\n}\n',
        'reserved_name.proto:4:9: Field name "a" is reserved.'),
    'enum_reserved_number': (
        'syntax = "proto3";\nenum E { Z = 0; X = 5; reserved 5; }\n',
        'enum_reserved_number.proto:2:33: Enum value "X" uses reserved number 5.'),
    'enum_first_not_zero': (
        'syntax = "proto3";\nenum E { X = 1; }\n',
        'enum_first_not_zero.proto:2:14: The first enum value must be zero for open enums.'),
    'enum_alias': (
        'syntax = "proto3";\nenum E { Z = 0; Y = 0; }\n',
        'enum_alias.proto:2:21: "Y" uses the same enum value as "Z". If this is intended, set \'option allow_alias = true;\' to the enum definition. The next available enum value is 1.'),
    'enum_value_scope': (
        'syntax = "proto3";\nenum E { Z = 0; }\nenum F { Z = 0; }\n',
        'enum_value_scope.proto:3:10: "Z" is already defined.'),
    'proto3_required': (
        'syntax = "proto3";\nmessage A { required int32 a = 1; }\n',
        'proto3_required.proto:2:22: Required fields are not allowed in proto3.'),
    'proto3_default': (
        'syntax = "proto3";\nmessage A { int32 a = 1 [default = 3]; }\n',
        'proto3_default.proto:2:36: Explicit default values are not allowed in proto3.'),
    'proto3_group': (
        'syntax = "proto3";\nmessage A { optional group G = 1 {} }\n',
        'proto3_group.proto:2:22: Groups are not supported in proto3 syntax.'),
    'proto3_extension_range': (
        'syntax = "proto3";\nmessage A { extensions 5 to 10; }\n',
        'proto3_extension_range.proto:2:24: Extension ranges are not allowed in proto3.'),
    'proto2_no_label': (
        'syntax = "proto2";\nmessage A { int32 x = 1; }\n',
        'proto2_no_label.proto:2:13: Expected "required", "optional", or "repeated".'),
    'missing_semicolon': (
        'syntax = "proto2";\nmessage A { optional int32 x = 1 }\n',
        'missing_semicolon.proto:2:34: Expected ";".'),
    'bad_syntax': (
        'syntax = "proto4";\n',
        'bad_syntax.proto:1:10: Unrecognized syntax identifier "proto4".  This parser only recognizes "proto2" and "proto3".'),
    'json_conflict': (
        'syntax = "proto3";\nmessage A { int32 foo_bar = 1; int32 fooBar = 2; }\n',
        'json_conflict.proto:2:38: The default JSON name of field "fooBar" ("fooBar") conflicts with the default JSON name of field "foo_bar".'),
    'unknown_option': (
        'syntax = "proto3";\nmessage A { int32 a = 1 [nope = 1]; }\n',
        'unknown_option.proto:2:26: Option "nope" unknown. Ensure that your proto definition file imports the proto which defines the option (i.e. via import option after edition 2024).'),
    'unknown_custom_option': (
        'syntax = "proto3";\noption (nope) = 1;\n',
        'unknown_custom_option.proto:2:8: Option "(nope)" unknown. Ensure that your proto definition file imports the proto which defines the option (i.e. via import option after edition 2024).'),
    'option_bad_value': (
        'syntax = "proto3";\nmessage A { int32 a = 1 [deprecated = 1]; }\n',
        'option_bad_value.proto:2:39: Value must be identifier for boolean option "google.protobuf.FieldOptions.deprecated".'),
    'option_bad_enum': (
        'syntax = "proto3";\noption optimize_for = FASTEST;\n',
        'option_bad_enum.proto:2:23: Enum type "google.protobuf.FileOptions.OptimizeMode" has no value named "FASTEST" for option "google.protobuf.FileOptions.optimize_for".'),
    'packed_singular': (
        'syntax = "proto3";\nmessage A { int32 a = 1 [packed = true]; }\n',
        'packed_singular.proto:2:13: [packed = true] can only be specified for repeated primitive fields.'),
    'extend_not_in_range': (
        'syntax = "proto2";\nmessage A { extensions 10 to 20; }\nextend A { optional int32 x = 5; }\n',
        'extend_not_in_range.proto:3:31: "A" does not declare 5 as an extension number.'),
    'method_not_message': (
        'syntax = "proto3";\nenum E { Z = 0; }\nmessage M {}\nservice S { rpc Call(E) returns (M); }\n',
        'method_not_message.proto:4:22: "E" is not a message type.'),
    'method_unknown': (
        'syntax = "proto3";\nservice S { rpc Call(Nope) returns (Nope); }\n',
        'method_unknown.proto:2:22: "Nope" is not defined.'),
    'default_bad_enum': (
        'syntax = "proto2";\nenum E { Z = 0; }\nmessage A { optional E e = 1 [default = Q]; }\n',
        'default_bad_enum.proto:3:41: Enum type "E" has no value named "Q".'),
    'default_message': (
        'syntax = "proto2";\nmessage A { optional A a = 1 [default = x]; }\n',
        "default_message.proto:2:41: Messages can't have default values."),
    'default_out_of_range': (
        'syntax = "proto2";\nmessage A { optional int32 a = 1 [default = 2147483648]; }\n',
        'default_out_of_range.proto:2:45: Integer out of range.'),
    'unsigned_negative_default': (
        'syntax = "proto2";\nmessage A { optional uint32 a = 1 [default = -1]; }\n',
        "unsigned_negative_default.proto:2:47: Unsigned field can't have negative default value."),
    'group_lowercase': (
        'syntax = "proto2";\nmessage A { optional group g = 1 {} }\n',
        'group_lowercase.proto:2:28: Group names must start with a capital letter.'),
    'unterminated_string': (
        'syntax = "proto3";\noption java_package = "abc;\n',
        'unterminated_string.proto:2:28: Multiline strings are not allowed. Did you miss a "?.'),
    'unterminated_comment': (
        'syntax = "proto3";\n/* never closed\n',
        'unterminated_comment.proto:3:1: End-of-file inside block comment.'),
    'tab_column': (
        'syntax = "proto3";\nmessage A {\n\tint32 a = 1;\n\tint32\tb = 1;\n}\n',
        'tab_column.proto:4:21: Field number 1 has already been used in "A" by field "a". Next available field number is 2.'),
    'option_already_set': (
        'syntax = "proto3";\noption java_package = "a";\noption java_package = "b";\n',
        'option_already_set.proto:3:8: Option "java_package" was already set.'),
    'option_type_int_range': (
        'syntax = "proto2";\nimport "google/protobuf/descriptor.proto";\nextend google.protobuf.FileOptions { optional int32 small = 50000; }\noption (small) = 3000000000;\n',
        'option_type_int_range.proto:4:18: Value out of range, -2147483648 to 2147483647, for int32 option "small".'),
    'option_string_for_int': (
        'syntax = "proto2";\nimport "google/protobuf/descriptor.proto";\nextend google.protobuf.FileOptions { optional int32 small = 50000; }\noption (small) = "x";\n',
        'option_string_for_int.proto:4:18: Value must be integer, from -2147483648 to 2147483647, for int32 option "small".'),
    'reserved_range_backwards': (
        'syntax = "proto3";\nmessage A { reserved 5 to 3; }\n',
        'reserved_range_backwards.proto:2:22: Reserved range end number must be greater than start number.'),
    'proto3_extend_non_option': (
        'syntax = "proto3";\nimport "google/protobuf/any.proto";\nextend google.protobuf.Any { int32 x = 100; }\n',
        'proto3_extend_non_option.proto:3:40: "google.protobuf.Any" does not declare 100 as an extension number.'),
    'not_imported': (
        'syntax = "proto3";\nimport "middle.proto";\nmessage A { o.Other x = 1; }\n',
        'not_imported.proto:3:13: "o.Other" seems to be defined in "other.proto", which is not imported by "not_imported.proto".  To use it here, please add the necessary import.'),
    'import_missing': (
        'syntax = "proto3";\nimport "missing.proto";\n',
        'missing.proto: File not found.'),
    'multiple_package': (
        'syntax = "proto3";\npackage a;\npackage b;\n',
        'multiple_package.proto:3:1: Multiple package definitions.'),
    'top_level_junk': (
        'syntax = "proto3";\nfoo bar;\n',
        'top_level_junk.proto:2:1: Expected top-level statement (e.g. "message").'),
    'resolved_innermost': (
        'syntax = "proto3";\npackage a.b;\nmessage b { }\nmessage M { b.c x = 1; }\nmessage c {}\n',
        'resolved_innermost.proto:4:13: "b.c" is resolved to "a.b.b.c", which is not defined. The innermost scope is searched first in name resolution. Consider using a leading \'.\'(i.e., ".b.c") to start from the outermost scope.'),
    'import_twice': (
        'syntax = "proto3";\nimport "other.proto";\nimport "other.proto";\n',
        'import_twice.proto:3:1: Import "other.proto" was listed twice.'),
    'json_name_on_extension': (
        'syntax = "proto2";\nmessage A { extensions 10 to 20; }\nextend A { optional int32 x = 10 [json_name = "y"]; }\n',
        'json_name_on_extension.proto:3:35: option json_name is not allowed on extension fields.'),
    'repeated_default': (
        'syntax = "proto2";\nmessage A { repeated int32 x = 1 [default = 1]; }\n',
        "repeated_default.proto:2:45: Repeated fields can't have default values."),
    'required_extension': (
        'syntax = "proto2";\npackage p;\nmessage A { extensions 10 to 20; }\nextend A { required int32 x = 10; }\n',
        'required_extension.proto:4:21: The extension p.x cannot be required.'),
    'string_default_not_string': (
        'syntax = "proto2";\nmessage A { optional string s = 1 [default = 5]; }\n',
        'string_default_not_string.proto:2:46: Expected string for field default value.'),
    'empty_oneof': (
        'syntax = "proto3";\nmessage A { oneof o { } }\n',
        'empty_oneof.proto:2:23: Expected type name.'),
    'extension_range_overlap': (
        'syntax = "proto2";\nmessage A { extensions 10 to 20; extensions 15 to 30; }\n',
        'extension_range_overlap.proto:2:24: Extension range 15 to 30 overlaps with already-defined range 10 to 20.'),
    'extension_range_vs_reserved': (
        'syntax = "proto2";\nmessage A { extensions 10 to 20; reserved 15 to 30; }\n',
        'extension_range_vs_reserved.proto:2:24: Extension range 10 to 20 overlaps with reserved range 15 to 30.'),
    'reserved_overlap': (
        'syntax = "proto3";\nmessage A { reserved 10 to 20, 15 to 30; }\n',
        'reserved_overlap.proto:2:22: Reserved range 15 to 30 overlaps with already-defined range 10 to 20.'),
    'enum_reserved_overlap': (
        'syntax = "proto3";\nenum E { Z = 0; reserved 1 to 5, 3 to 9; }\n',
        'enum_reserved_overlap.proto:2:26: Reserved range 3 to 9 overlaps with already-defined range 1 to 5.'),
    'extension_range_includes_field': (
        'syntax = "proto2";\nmessage A { optional int32 a = 15; extensions 10 to 20; }\n',
        'extension_range_includes_field.proto:2:47: Extension range 10 to 20 includes field "a" (15).'),
    'extension_number_taken': (
        'syntax = "proto2";\nmessage A { extensions 5 to 9; }\nextend A { optional int32 x = 5; optional int32 y = 5; }\n',
        'extension_number_taken.proto:3:53: Extension number 5 has already been used in "A" by extension "x".'),
    'useless_allow_alias': (
        'syntax = "proto3";\nenum E {\n  option allow_alias = true;\n  Z = 0;\n}\nmessage After {}\n',
        'useless_allow_alias.proto:6:1: "E" declares support for enum aliases but no enum values share field numbers. Please remove the unnecessary \'option allow_alias = true;\' declaration.'),
    'allow_alias_false': (
        'syntax = "proto3";\nenum E { option allow_alias = false; Z = 0; }\n',
        'allow_alias_false.proto:3:1: "E" declares \'option allow_alias = false;\' which has no effect. Please remove the declaration.'),
    'alias_full_names': (
        'syntax = "proto3";\npackage p.q;\nmessage M { enum E { Z = 0; Y = 0; } }\n',
        'alias_full_names.proto:3:33: "p.q.M.Y" uses the same enum value as "p.q.M.Z". If this is intended, set \'option allow_alias = true;\' to the enum definition. The next available enum value is 1.'),
    'oneof_field_name_clash': (
        'syntax = "proto3";\nmessage A { oneof o { int32 a = 1; } int32 o = 2; }\n',
        'oneof_field_name_clash.proto:2:44: "o" is already defined in "A".'),
    'number_before_name': (
        'syntax = "proto3";\nmessage M0 {\n  double alpha = 1;\n  double alpha = 0;\n}\n',
        'number_before_name.proto:4:18: Field numbers must be positive integers.'),
    'validation_order': (
        'syntax = "proto3";\nenum E { X = 1; }\nmessage M0 { enum F { Y = 1; } map<double, int32> m = 3; int32 foo_bar = 4; int32 fooBar = 5; }\n',
        'validation_order.proto:3:83: The default JSON name of field "fooBar" ("fooBar") conflicts with the default JSON name of field "foo_bar".'),
    'reserved_numbers_last': (
        'syntax = "proto3";\nmessage M0 { int32 a = 19000; int32 b = 19999; }\n',
        'reserved_numbers_last.proto: Field numbers 19000 through 19999 are reserved for the protocol buffer library implementation.'),
    'bad_option_in_aggregate': (
        'syntax = "proto2";\nimport "google/protobuf/descriptor.proto";\nmessage L { optional int32 max = 1; }\nextend google.protobuf.MessageOptions { optional L lim = 50000; }\nmessage A { option (lim) = { max: 1 min: 2 }; }\n',
        'bad_option_in_aggregate.proto:5:28: Error while parsing option value for "lim": Message type "L" has no field named "min".'),
    'partial_option_then_whole': (
        'syntax = "proto2";\nimport "google/protobuf/descriptor.proto";\nmessage L { optional int32 max = 1; }\nextend google.protobuf.MessageOptions { optional L lim = 50000; }\nmessage A { option (lim).max = 1; option (lim) = { max: 2 }; }\n',
        'partial_option_then_whole.proto:5:42: Option "(lim)" was already set.'),
    'option_on_atomic': (
        'syntax = "proto3";\nmessage A { option deprecated.x = true; }\n',
        'option_on_atomic.proto:2:20: Option "deprecated" is an atomic type, not a message.'),
    'jstype_on_string': (
        'syntax = "proto2";\nmessage A { optional string b = 2 [jstype = JS_NUMBER]; }\n',
        'jstype_on_string.proto:2:22: jstype is only allowed on int64, uint64, sint64, fixed64 or sfixed64 fields.'),
    'lazy_on_scalar': (
        'syntax = "proto2";\nmessage A { optional int32 b = 2 [lazy = true]; }\n',
        'lazy_on_scalar.proto:2:22: [lazy = true] can only be specified for submessage fields.'),
    'aggregate_cut_by_hash': (
        'syntax = "proto2";\nimport "google/protobuf/descriptor.proto";\nmessage L { optional int32 max = 1; optional L sub = 3; }\nextend google.protobuf.MessageOptions { optional L lim = 50000; }\nmessage A { option (lim) = { max: 1 sub { max: 3 # c\n } }; }\n',
        'aggregate_cut_by_hash.proto:5:28: Error while parsing option value for "lim": Expected identifier, got: '),
    'aggregate_unknown_field': (
        'syntax = "proto2";\nimport "google/protobuf/descriptor.proto";\nmessage L { optional int32 max = 1; }\nextend google.protobuf.MessageOptions { optional L lim = 50000; }\nmessage A { option (lim) = { min: 1 }; }\n',
        'aggregate_unknown_field.proto:5:28: Error while parsing option value for "lim": Message type "L" has no field named "min".'),
    'recovery_many': (
        'syntax = "proto2";\nmessage A { optional int32 x = 1 } message B { optional int32 = 2; } enum { }\n',
        'recovery_many.proto:2:34: Expected ";".'),
    'recovery_unmatched_brace': (
        'syntax = "proto2";\nmessage A { optional int32 x = "s"; } }\n',
        'recovery_unmatched_brace.proto:2:32: Expected field number.'),
    'recovery_lexer': (
        'syntax = "proto2";\noption java_package = "a\\q"; message A { optional int32 x = 0x; }\n',
        'recovery_lexer.proto:2:26: Invalid escape sequence in string literal.'),
    'bad_octal': (
        'syntax = "proto2";\nmessage A { optional int32 x = 08; }\n',
        'bad_octal.proto:2:33: Numbers starting with leading zero must be in octal.'),
    'alias_skips_next_statement': (
        'syntax = "proto2";\nenum A { option allow_alias = true; A0 = 1; }\nmessage X { optional int32 x = 1 }\nenum B { option allow_alias = true; B0 = 1; }\n',
        'alias_skips_next_statement.proto:3:1: "A" declares support for enum aliases but no enum values share field numbers. Please remove the unnecessary \'option allow_alias = true;\' declaration.'),
    'method_body_not_option': (
        'syntax = "proto3";\nservice S { rpc A(B) returns (C) { int32 x = 1; } }\n',
        'method_body_not_option.proto:2:36: Expected "option".'),
    'big_integer_option_is_double': (
        'syntax = "proto2";\nimport "google/protobuf/descriptor.proto";\nextend google.protobuf.FileOptions { optional int64 i = 50001; }\noption (i) = -99999999999999999999;\n',
        'big_integer_option_is_double.proto:4:14: Value must be integer, from -9223372036854775808 to 9223372036854775807, for int64 option "i".'),
    'alias_next_free_above': (
        'syntax = "proto2";\nenum E { A = 0; B = 3; C = 2; D = 2; }\n',
        'alias_next_free_above.proto:2:35: "D" uses the same enum value as "C". If this is intended, set \'option allow_alias = true;\' to the enum definition. The next available enum value is 4.'),
    'alias_no_free_value': (
        'syntax = "proto2";\nenum E { A = 0; B = 2147483646; C = 2147483647; D = 2147483646; }\n',
        'alias_no_free_value.proto:2:53: "D" uses the same enum value as "B". If this is intended, set \'option allow_alias = true;\' to the enum definition.'),
    'scoping_traps': (
        'syntax = "proto3";\npackage scope.outer;\nmessage Node {\n  message Node { Node child = 1; }\n  scope.Other o = 1;\n  repeated Node.Node nodes = 2;\n}\nmessage scope {}\nmessage Other {}\n',
        'scoping_traps.proto:5:3: "scope.Other" is resolved to "scope.outer.scope.Other", which is not defined. The innermost scope is searched first in name resolution. Consider using a leading \'.\'(i.e., ".scope.Other") to start from the outermost scope.'),
    'skip_steps_over_a_brace': (
        'syntax = "proto2";\nmessage M2 {\n  enum M2E {\n    option allow_alias = true;\n    A = 1;\n  }\n  message N {\n    oneof o { double a = 1; }\n  }\n}\n',
        'skip_steps_over_a_brace.proto:7:3: "M2E" declares support for enum aliases but no enum values share field numbers. Please remove the unnecessary \'option allow_alias = true;\' declaration.'),
    'no_hint_for_nested': (
        'syntax = "proto2";\nmessage M1 { optional int32 b = 0; message N { optional double a = 0; } }\n',
        'no_hint_for_nested.proto:2:33: Field numbers must be positive integers.'),
    'unresolved_field_number_unchecked': (
        'syntax = "proto2";\nmessage M0 {\n  optional double alpha = 1;\n  oneof o { Missing pick0 = 1; }\n}\n',
        'unresolved_field_number_unchecked.proto:4:13: "Missing" is not defined.'),
    'next_available_with_zero': (
        'syntax = "proto2";\nmessage M { optional int32 f0 = 3; optional int32 f1 = 3; optional int32 f2 = 0; optional int32 f3 = 1; optional int32 f4 = 2; }\n',
        'next_available_with_zero.proto:2:79: Field numbers must be positive integers.'),
    'nested_cross_linked_first': (
        'syntax = "proto2";\nmessage M1 {\n  oneof c { double p0 = 1; double p1 = 1; }\n  message N {\n    optional double a = 1;\n    oneof d { double q = 1; }\n  }\n}\n',
        'nested_cross_linked_first.proto:6:26: Field number 1 has already been used in "M1.N" by field "a". Next available field number is 2.'),
    'zero_numbers_collide_too': (
        'syntax = "proto2";\nmessage M1 {\n  optional double a = 0;\n  optional double b = 0;\n}\n',
        'zero_numbers_collide_too.proto:3:23: Field numbers must be positive integers.'),
    'three_suggestions_at_most': (
        'syntax = "proto2";\nmessage M { optional int32 f0 = 0; optional int32 f1 = 536870912; optional int32 f2 = 0; optional int32 f3 = 0; }\n',
        'three_suggestions_at_most.proto:2:33: Field numbers must be positive integers.'),
    'map_value_closed_enum': (
        'syntax = "proto2";\nenum Top { TOP = 1; }\nmessage M1 {\n  map<int32, Top> alpha = 1;\n}\n',
        'map_value_closed_enum.proto:4:3: Enum value in map must define 0 as the first value.'),
    'map_value_unknown_type': (
        'syntax = "proto3";\nmessage M1 {\n  map<int32, Nope> alpha = 1;\n}\n',
        'map_value_unknown_type.proto: "Nope" is not defined.'),
}

@pytest.mark.parametrize("name", sorted(ERRORS))
def test_error_as_protoc(name: str, tmp_path: Path) -> None:
    source, first = ERRORS[name]
    (tmp_path / "other.proto").write_text('syntax = "proto3";\npackage o;\nmessage Other {}\n')
    (tmp_path / "middle.proto").write_text('syntax = "proto3";\nimport "other.proto";\n')
    (tmp_path / f"{name}.proto").write_text(source)
    with pytest.raises(ProtoSchemaError) as info:
        parse_files([tmp_path / f"{name}.proto"], [tmp_path])
    prefix = f"{tmp_path}/"
    mine = [line[len(prefix):] if line.startswith(prefix) else line for line in info.value.errors]
    assert isinstance(info.value, ValueError)
    assert mine[0] == first
    result = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I.", "--descriptor_set_out=out.pb",
         f"{name}.proto"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 1
    theirs = [line for line in result.stderr.splitlines()
              if line.strip() and "warning" not in line.lower()]
    assert mine == theirs


def test_every_error_is_listed(tmp_path: Path) -> None:
    """Errors of one phase are all reported, in protoc's order."""
    (tmp_path / "many.proto").write_text(
        'syntax = "proto3";\nmessage A {\n  int32 a = 0;\n  int32 b = 536870912;\n'
        "  int32 a = 4;\n  int32 e = 4;\n  Unknown u = 6;\n  reserved 9;\n  int32 z = 9;\n}\n")
    with pytest.raises(ProtoSchemaError) as info:
        parse_files([tmp_path / "many.proto"], [tmp_path])
    result = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{tmp_path}",
         f"--descriptor_set_out={tmp_path / 'out.pb'}", str(tmp_path / "many.proto")],
        capture_output=True, text=True, timeout=120)
    assert info.value.errors == result.stderr.splitlines()
    assert len(info.value.errors) == 7
    assert str(info.value) == result.stderr.rstrip("\n")
