import Foundation

/// Minimal GGUF v3 tensor directory for the quantization fixtures, used until
/// `SwiftletFormats.GGUFFile` is available (then this file goes away). Test-only: traps on
/// malformed input.
struct TinyGGUF {
    struct Tensor { let name: String; let dims: [Int]; let type: UInt32; let offset: Int }
    let data: Data
    let tensors: [String: Tensor]
    let dataStart: Int

    init(url: URL) throws {
        let data = try Data(contentsOf: url)
        self.data = data
        var pos = 0
        func u32() -> UInt32 { defer { pos += 4 }; return data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: pos, as: UInt32.self) } }
        func u64() -> UInt64 { defer { pos += 8 }; return data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: pos, as: UInt64.self) } }
        func string() -> String {
            let n = Int(u64()); defer { pos += n }
            return String(decoding: data[pos..<(pos + n)], as: UTF8.self)
        }
        var alignment = 32
        func skipValue(_ type: UInt32, key: String) {
            switch type {
            case 0, 1, 7: pos += 1
            case 2, 3: pos += 2
            case 4, 5, 6:
                let v = u32()
                if key == "general.alignment" { alignment = Int(v) }
            case 10, 11, 12: pos += 8
            case 8: _ = string()
            case 9:
                let et = u32(), n = Int(u64())
                for _ in 0..<n { skipValue(et, key: "") }
            default: fatalError("unknown GGUF value type \(type)")
            }
        }
        precondition(u32() == 0x4655_4747, "not GGUF")
        _ = u32()
        let nTensors = Int(u64()), nKV = Int(u64())
        for _ in 0..<nKV {
            let key = string()
            skipValue(u32(), key: key)
        }
        var tensors: [String: Tensor] = [:]
        for _ in 0..<nTensors {
            let name = string()
            let nd = Int(u32())
            let dims = (0..<nd).map { _ in Int(u64()) }
            let type = u32()
            let offset = Int(u64())
            tensors[name] = Tensor(name: name, dims: dims, type: type, offset: offset)
        }
        self.tensors = tensors
        dataStart = (pos + alignment - 1) / alignment * alignment
    }

    func bytes(_ name: String, count: Int) -> Data {
        let t = tensors[name]!
        return data.subdata(in: (dataStart + t.offset)..<(dataStart + t.offset + count))
    }

    func floats(_ name: String) -> [Float] {
        let t = tensors[name]!
        let n = t.dims.reduce(1, *)
        return bytes(name, count: 4 * n).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }
}
