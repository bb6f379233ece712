#!/usr/bin/env python3
"""Dump a GGUF file as JSON using gguf-py's reader (an implementation independent of Swiftlet).

Used by Tests/SwiftletFormatsTests (GGUFPythonInteropTests) to check that files Swiftlet writes
read back identically in gguf-py, and that Swiftlet reads real files as gguf-py does.
Requires `pip install gguf`.

Output: {"version", "alignment", "data_offset", "metadata": [[key, value], ...],
"tensors": [{"name", "type", "shape", "offset", "nbytes", "crc32"?}, ...]}
A scalar value is [TYPE, v]; an array is ["ARRAY", ELEMENT_TYPE, [elements]] whose elements are
plain values, or (for arrays of arrays) nested ["ARRAY", ...] lists. Floats are given as their
IEEE bit patterns, bools as 0 or 1, 64-bit integers as decimal strings, so JSON loses nothing.
"""
import json
import sys
import zlib

import numpy as np
from gguf import GGUFReader, GGUFValueType


def scalar(vtype, part):
    v = part[0]
    if vtype == GGUFValueType.FLOAT32:
        return int(np.asarray(part, dtype=np.float32).view(np.uint32)[0])
    if vtype == GGUFValueType.FLOAT64:
        return int(np.asarray(part, dtype=np.float64).view(np.uint64)[0])
    if vtype in (GGUFValueType.UINT64, GGUFValueType.INT64):
        return str(int(v))
    if vtype == GGUFValueType.BOOL:
        return 1 if bool(v) else 0
    return int(v)


def decode(vtype, parts, i):
    """Decodes the value of type vtype starting at parts[i]; returns (encoded, next index)."""
    if vtype == GGUFValueType.STRING:
        return str(bytes(parts[i + 1]), encoding="utf-8"), i + 2
    if vtype == GGUFValueType.ARRAY:
        etype = GGUFValueType(int(parts[i][0]))
        count = int(parts[i + 1][0])
        i += 2
        elements = []
        for _ in range(count):
            e, i = decode(etype, parts, i)
            elements.append(e)
        return ["ARRAY", etype.name, elements], i
    return scalar(vtype, parts[i]), i + 1


def main():
    path = sys.argv[1]
    with_crc = "--crc" in sys.argv[2:]
    reader = GGUFReader(path)
    metadata = []
    version = None
    for field in reader.fields.values():
        if field.name.startswith("GGUF."):
            if field.name == "GGUF.version":
                version = int(field.parts[0][0])
            continue
        vtype = GGUFValueType(int(field.types[0]))
        value, end = decode(vtype, field.parts, 3)
        assert end == len(field.parts), field.name
        if vtype != GGUFValueType.ARRAY:
            value = [vtype.name, value]
        metadata.append([field.name, value])
    tensors = []
    for t in reader.tensors:
        entry = {
            "name": t.name,
            "type": int(t.tensor_type),
            "shape": [int(d) for d in t.shape],
            "offset": int(t.data_offset),
            "nbytes": int(t.n_bytes),
        }
        if with_crc:
            entry["crc32"] = zlib.crc32(bytes(reader.data[t.data_offset:t.data_offset + t.n_bytes]))
        tensors.append(entry)
    out = {"version": version, "alignment": int(reader.alignment), "data_offset": int(reader.data_offset),
           "metadata": metadata, "tensors": tensors}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
