#!/usr/bin/env bash
# Apple syntax check (run by Tests/ARM/run.sh), without an Apple SDK: what can be verified here.
# 1. The C kernels parse and type-check for arm64-apple-macos and arm64-apple-ios (clang
#    -fsyntax-only; freestanding, with stand-ins for the few SDK headers in Tests/ARM/apple-stubs).
# 2. SwiftletTensor's `canImport(Accelerate)` branches (cblas_sgemm / cblas_sgemv, SystemInfo)
#    type-check against a stand-in Accelerate module declaring the SDK's CBLAS signatures.
# Not verified here: linking against the real SDK, `canImport(Darwin)` branches, running anything.
set -euo pipefail
cd "$(dirname "$0")/../.."
clang_bin=$(command -v clang || true)
if [ -z "$clang_bin" ]; then echo "apple-check: no clang, skipped" >&2; exit 0; fi
resource=$("$clang_bin" -print-resource-dir)
stubs=Tests/ARM/apple-stubs
for target in arm64-apple-macos15 arm64-apple-ios18; do
  for f in Sources/CSwiftletKernels/*.c; do
    "$clang_bin" --target=$target -ffreestanding -fsyntax-only -Wall -Wextra -Werror -nostdlibinc \
      -isystem "$resource/include" -isystem "$stubs" -ISources/CSwiftletKernels/include -ISources/CSwiftletKernels "$f"
  done
done
echo "apple-check: C kernels type-check for arm64-apple-macos15 and arm64-apple-ios18"
if command -v swiftc >/dev/null; then
  mods=$(mktemp -d)
  trap 'rm -rf "$mods"' EXIT
  mkdir -p "$mods/CSwiftletKernels"
  printf 'module CSwiftletKernels {\n    header "%s/Sources/CSwiftletKernels/include/swiftlet_kernels.h"\n    export *\n}\n' "$PWD" \
    > "$mods/CSwiftletKernels/module.modulemap"
  swiftc -emit-module -parse-as-library -module-name SwiftletCore -emit-module-path "$mods/SwiftletCore.swiftmodule" \
    Sources/SwiftletCore/*.swift
  swiftc -typecheck -parse-as-library -module-name SwiftletTensor -I "$stubs/Accelerate" -I "$mods" Sources/SwiftletTensor/*.swift
  echo "apple-check: SwiftletTensor's Accelerate branches type-check against the CBLAS stand-in"
fi
