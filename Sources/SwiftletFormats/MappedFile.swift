import Foundation
import SwiftletCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The bytes of a whole file, mapped read-only into memory (or, for tests and fuzzing, a private
/// aligned copy of some bytes).
///
/// The mapping lives as long as this object; views handed out (``bytes`` and slices of it) are
/// valid only while it is alive. The base address is page aligned for a mapped file and 64-byte
/// aligned for a copy, so an offset aligned in the file is equally aligned in memory.
///
/// A file truncated by another process while it is mapped makes later reads fault (SIGBUS);
/// Swiftlet cannot guard against that, as with any memory-mapped reader.
public final class MappedFile: @unchecked Sendable {  // `bytes` is never written after init
    /// The file mapped, or `nil` for bytes copied from memory.
    public let url: URL?
    /// All bytes of the file.
    public let bytes: UnsafeRawBufferPointer

    private enum Ownership { case mapped, allocated, borrowed(AnyObject?), empty }
    private let ownership: Ownership

    /// Maps the file at `url` read-only.
    ///
    /// - Throws: ``SwiftletError/io(path:reason:)`` when the file cannot be opened, is not a
    ///   regular file, or cannot be mapped.
    public init(url: URL) throws {
        let path = url.path
        self.url = url
        // Non-blocking, so that opening a FIFO returns at once and is refused below instead of
        // waiting forever for a writer.
        let fd = open(path, O_RDONLY | O_NONBLOCK)
        guard fd >= 0 else { throw SwiftletError.io(path: path, reason: "cannot open: \(MappedFile.errnoText())") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw SwiftletError.io(path: path, reason: "cannot stat: \(MappedFile.errnoText())")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw SwiftletError.io(path: path, reason: "not a regular file")
        }
        let size = Int(info.st_size)
        if size == 0 {
            // mmap refuses zero-length mappings; an empty file is simply zero bytes.
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            ownership = .empty
            return
        }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw SwiftletError.io(path: path, reason: "cannot mmap \(size) bytes: \(MappedFile.errnoText())")
        }
        bytes = UnsafeRawBufferPointer(start: UnsafeRawPointer(base), count: size)
        ownership = .mapped
    }

    /// The bytes of the regular file at `url` (a FIFO or device is refused before any read),
    /// or ``SwiftletError/io(path:reason:)`` when it is larger than `limit` bytes.
    public static func readRegularFile(_ url: URL, limit: Int) throws -> Data {
        let file = try MappedFile(url: url)
        guard file.bytes.count <= limit else {
            throw SwiftletError.io(path: url.path, reason: "file of \(file.bytes.count) bytes exceeds the \(limit) bytes accepted")
        }
        return Data(file.bytes)
    }

    /// The text of the regular file at `url`, which must be valid UTF-8: otherwise
    /// ``SwiftletError/malformedFile(path:reason:)`` naming the offset of the first bad byte.
    public static func readText(_ url: URL, limit: Int) throws -> String {
        let data = try readRegularFile(url, limit: limit)
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = data.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let scalar): offset += scalar.count
            case .emptyInput: return String(decoding: data, as: UTF8.self)
            case .error: throw SwiftletError.malformedFile(path: url.path, reason: "not valid UTF-8 (byte \(offset))")
            }
        }
    }

    /// A private, 64-byte aligned copy of `data`.
    public init<Bytes: ContiguousBytes>(copying data: Bytes) {
        url = nil
        let copied: UnsafeRawBufferPointer = data.withUnsafeBytes { source in
            guard source.count > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
            let target = UnsafeMutableRawBufferPointer.allocate(byteCount: source.count, alignment: 64)
            target.copyMemory(from: source)
            return UnsafeRawBufferPointer(target)
        }
        bytes = copied
        ownership = copied.count > 0 ? .allocated : .empty
    }

    /// A view of memory owned elsewhere, without copying: `bytes` must stay valid and unchanged
    /// while this object lives (`owner`, if given, is retained for that). For fuzzing and for
    /// tests that place bytes against a guard page.
    public init(unsafeBorrowing bytes: UnsafeRawBufferPointer, owner: AnyObject? = nil) {
        url = nil
        self.bytes = bytes
        ownership = .borrowed(owner)
    }

    deinit {
        switch ownership {
        case .mapped: munmap(UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count)
        case .allocated: bytes.deallocate()
        case .borrowed, .empty: break
        }
    }

    /// The file's name for error messages.
    public var displayPath: String { url?.path ?? "<memory>" }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}
