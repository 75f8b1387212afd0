"""Random schemas, compiled by fastnet and by protoc (the oracle).

hypothesis writes .proto files from the grammar (proto2 and proto3:
messages nested two deep, enums, every scalar type, references to other
types by relative and qualified names, labels, maps, oneofs, groups,
extensions, reserved ranges and names, options and custom options,
defaults, services), most
of them valid and some not (numbers collide, names repeat, types are
missing). Either both compilers accept a schema and write the same
FileDescriptorSet bytes, or both reject it with the same error lines.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastnet.errors import ProtoSchemaError
from fastnet.proto.frontend import parse_files
from fastnet.proto.writer import encode_set

SCALARS = ["double", "float", "int64", "uint64", "int32", "fixed64", "fixed32", "bool",
           "string", "bytes", "uint32", "sfixed32", "sfixed64", "sint32", "sint64"]
MAP_KEYS = ["int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32", "fixed64",
            "sfixed32", "sfixed64", "bool", "string"]
DEFAULTS = {"double": ["1.5", "-2e10", "inf", "-inf", "nan", "0x10"], "float": ["0.1", "3"],
            "int32": ["-7", "0x7f", "017"], "int64": ["-9223372036854775808"],
            "uint32": ["4294967295"], "uint64": ["18446744073709551615"],
            "sint32": ["-1"], "sint64": ["5"], "fixed32": ["1"], "fixed64": ["2"],
            "sfixed32": ["-3"], "sfixed64": ["-4"], "bool": ["true", "false"],
            "string": ['"a\\tb"', "'q'", '"\\u00e9"'], "bytes": ['"\\x00\\377z"', '""']}
NAMES = ["alpha", "beta_gamma", "Delta", "eps_", "_zeta", "eta9", "theta__x", "iota"]


def _message(draw: st.DrawFn, syntax: str, name: str, depth: int, types: list[str],
             numbers: st.SearchStrategy[int], field_options: list[str]) -> str:
    lines = [f"message {name} {{"]
    if field_options and draw(st.integers(0, 2)) == 0:
        lines.append(f"  option (m_msg).a = {draw(st.integers(-3, 3))};")
    nested: list[str] = []
    if depth < 2:
        for i in range(draw(st.integers(0, 2))):
            child = f"{name}N{i}"
            nested.append(_message(draw, syntax, child, depth + 1, types, numbers,
                                   field_options))
    if draw(st.booleans()):
        enum_name = f"{name}E"
        lines.append(_enum(draw, syntax, enum_name, prefix=name.upper()))
    used_names: list[str] = []
    for i in range(draw(st.integers(0, 6))):
        fname = draw(st.sampled_from(NAMES)) + (str(i) if draw(st.booleans()) else "")
        used_names.append(fname)
        number = draw(numbers)
        kind = draw(st.sampled_from(["scalar", "scalar", "ref", "map", "repeated", "group"]))
        options: list[str] = []
        if draw(st.integers(0, 4)) == 0:
            options.append("deprecated = true")
        if draw(st.integers(0, 5)) == 0:
            options.append(f'json_name = "j{i}"')
        if field_options and bool(draw(st.booleans())):
            options.extend(draw(st.lists(st.sampled_from(field_options), max_size=3)))
        if kind == "map":
            key = draw(st.sampled_from(MAP_KEYS + ["double"]))
            value = draw(st.sampled_from(SCALARS + types)) if types else "int32"
            decl = f"map<{key}, {value}> {fname} = {number}"
        elif kind == "group" and syntax == "proto2":
            group = f"G{fname.strip('_').capitalize()}{i}"
            label = draw(st.sampled_from(["optional", "repeated"]))
            lines.append(f"  {label} group {group} = {number} {{ optional int32 x = 1; }}")
            continue
        else:
            if kind == "ref" and types:
                ftype = draw(st.sampled_from(types))
            else:
                ftype = draw(st.sampled_from(SCALARS))
            label = "repeated" if kind == "repeated" else (
                "optional" if syntax == "proto2" or draw(st.booleans()) else "")
            if label == "repeated" and ftype in SCALARS and ftype not in ("string", "bytes") \
                    and draw(st.booleans()):
                options.append(f"packed = {draw(st.sampled_from(['true', 'false']))}")
            if syntax == "proto2" and label == "optional" and ftype in DEFAULTS \
                    and draw(st.booleans()):
                options.append(f"default = {draw(st.sampled_from(DEFAULTS[ftype]))}")
            decl = f"{label} {ftype} {fname} = {number}".strip()
        if options:
            decl += " [" + ", ".join(options) + "]"
        lines.append(f"  {decl};")
    if draw(st.booleans()):
        lines.append(f"  oneof choice_{name.lower()} {{")
        for j in range(draw(st.integers(1, 3))):
            ftype = draw(st.sampled_from(SCALARS + types))
            lines.append(f"    {ftype} pick{j} = {draw(numbers)};")
        lines.append("  }")
    if draw(st.booleans()):
        start = draw(st.integers(1, 40))
        lines.append(f"  reserved {start} to {start + draw(st.integers(0, 5))};")
    if draw(st.integers(0, 3)) == 0 and used_names:
        lines.append(f'  reserved "{draw(st.sampled_from(used_names + ["unused"]))}";')
    if syntax == "proto2" and draw(st.booleans()):
        lines.append("  extensions 1000 to 1999;")
    lines.extend("  " + line for n in nested for line in n.splitlines())
    lines.append("}")
    return "\n".join(lines)


def _enum(draw: st.DrawFn, syntax: str, name: str, prefix: str) -> str:
    lines = [f"enum {name} {{"]
    alias = draw(st.integers(0, 3)) == 0
    if alias:
        lines.append("  option allow_alias = true;")
    numbers = [0] if syntax == "proto3" or draw(st.booleans()) else []
    # mostly distinct values; sometimes repeats (aliases, or an error without allow_alias)
    numbers += draw(st.lists(st.integers(-3, 60), max_size=4,
                             unique=draw(st.integers(0, 3)) > 0))
    for i, number in enumerate(numbers):
        lines.append(f"  {prefix}_{name.upper()}_{i} = {number};")
    if not numbers:
        lines.append(f"  {prefix}_{name.upper()}_0 = 1;")
    lines.append("}")
    return "\n".join(lines)


#: custom options the generated fields may use when the file declares them
CUSTOM_FIELD_OPTIONS = ["(f_int) = 7", "(f_int) = -2147483649", "(f_int) = 2147483647",
                        '(f_str) = "s"', "(f_str) = 5", "(f_rep) = 1", "(f_rep) = 2",
                        "(f_msg).a = 3", '(f_msg).b = "t"', "(f_msg) = { a: 1 c: [1, 2] }",
                        "(f_msg) = { c: 4 b: 'q' }", "(f_msg).nope = 1", "(f_enum) = BLUE",
                        "(f_enum) = 2"]
def _custom_options(syntax: str) -> str:
    label = "optional " if syntax == "proto2" else ""
    return "\n".join([
        'import "google/protobuf/descriptor.proto";',
        f"message Opt {{ {label}int32 a = 1; {label}string b = 2; repeated int32 c = 3; }}",
        "enum Hue { HUE_UNSPECIFIED = 0; BLUE = 1; }",
        "extend google.protobuf.FieldOptions {",
        f"  {label}int32 f_int = 50001; {label}string f_str = 50002;",
        f"  repeated int32 f_rep = 50003; {label}Opt f_msg = 50004; {label}Hue f_enum = 50005;",
        "}",
        f"extend google.protobuf.MessageOptions {{ {label}Opt m_msg = 50010; }}"])


@st.composite
def schemas(draw: st.DrawFn) -> str:
    syntax = draw(st.sampled_from(["proto2", "proto3"]))
    package = draw(st.sampled_from(["", "pkg", "a.b.c"]))
    # field numbers: mostly distinct, sometimes a collision or an invalid one
    numbers = st.one_of(*[st.integers(1, 500)] * 6,
                        st.sampled_from([0, 1, 19000, 536870911, 536870912, 1000]))
    count = draw(st.integers(1, 3))
    names = [f"M{i}" for i in range(count)]
    types = names + ["M0N0", "M0.M0N0", ".M1", "Top", "google.protobuf.Timestamp",
                     "Missing"]
    if package:
        types.append(f".{package}.M0")
    out = [f'syntax = "{syntax}";']
    if package:
        out.append(f"package {package};")
    out.append('import "google/protobuf/timestamp.proto";')
    if draw(st.booleans()):
        out.append('option java_package = "com.example";')
    custom = draw(st.booleans())
    if custom:
        out.append(_custom_options(syntax))
    field_options = CUSTOM_FIELD_OPTIONS if custom else []
    out.append(_enum(draw, syntax, "Top", "TOP"))
    for name in names:
        out.append(_message(draw, syntax, name, 0, types, numbers, field_options))
    if syntax == "proto2" and draw(st.booleans()):
        out.append(f"extend M0 {{ optional int32 ext_{draw(st.integers(0, 9))} = "
                   f"{draw(st.sampled_from([1000, 1500, 5]))}; }}")
    if draw(st.booleans()):
        rpcs = []
        for i in range(draw(st.integers(1, 3))):
            req = draw(st.sampled_from(names + ["Top"]))
            stream_in = "stream " if draw(st.booleans()) else ""
            stream_out = "stream " if draw(st.booleans()) else ""
            body = "{}" if draw(st.booleans()) else ";"
            rpcs.append(f"  rpc Call{i}({stream_in}{req}) returns ({stream_out}M0) {body}")
        out.append("service Svc {\n" + "\n".join(rpcs) + "\n}")
    return "\n".join(out) + "\n"


#: examples per run; FASTNET_PROTO_EXAMPLES=500 (with --timeout 0) hunts longer, with
#: fresh random schemas (the default run is derandomized: the same schemas every time)
EXAMPLES = int(os.environ.get("FASTNET_PROTO_EXAMPLES", "30"))


# Each example runs protoc in a subprocess: on a loaded 2-core machine the 60
# examples this began with took over pytest's 300 s guard.
@pytest.mark.timeout(900)
@settings(max_examples=EXAMPLES, deadline=None, derandomize="FASTNET_PROTO_EXAMPLES" not in
          os.environ, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large,
                                                                  HealthCheck.function_scoped_fixture])
@given(source=schemas())
def test_random_schema_as_protoc(source: str, tmp_path: Path) -> None:
    (tmp_path / "r.proto").write_text(source)
    out = tmp_path / "protoc.pb"
    out.unlink(missing_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{tmp_path}",
         f"--descriptor_set_out={out}", "--include_imports", str(tmp_path / "r.proto")],
        capture_output=True, text=True, timeout=120)
    theirs = [line for line in result.stderr.splitlines()
              if line.strip() and "warning" not in line.lower()]
    try:
        mine = encode_set(parse_files([tmp_path / "r.proto"], [tmp_path]))
    except ProtoSchemaError as exc:
        assert result.returncode != 0, f"protoc accepts what fastnet rejects: {exc}\n{source}"
        assert exc.errors == theirs, source
        return
    assert result.returncode == 0, f"fastnet accepts what protoc rejects: {theirs}\n{source}"
    assert mine == out.read_bytes(), source

