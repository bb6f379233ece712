import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A raw TCP client for what HTTP libraries will not do: trickle bytes, send garbage, hang up.
enum SlowClient {
    /// Connects to 127.0.0.1:`port`; `nil` when the connection is refused.
    static func connect(port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if ok != 0 { close(fd); return nil }
        return fd
    }

    /// Whether the peer has closed `fd` (readable with end of file or an error).
    static func peerClosed(_ fd: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, 0) > 0 else { return false }
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT))
        return n <= 0
    }

    /// Sends `bytes` one at a time every `interval`, then keeps the connection open without
    /// finishing the request; returns whether the server closed it within `limit`.
    static func trickle(port: Int, bytes: [UInt8], interval: Duration, limit: Duration) async throws -> Bool {
        guard let fd = connect(port: port) else { return false }
        defer { close(fd) }
        let clock = ContinuousClock()
        let deadline = clock.now + limit
        var index = 0
        while clock.now < deadline {
            if peerClosed(fd) { return true }
            var byte = bytes[index % bytes.count]
            if send(fd, &byte, 1, Int32(MSG_NOSIGNAL)) < 0 { return true }
            index += 1
            try await Task.sleep(for: interval)
        }
        return false
    }

    /// Sends `request` whole and reads the answer until the server closes or `limit` passes.
    static func exchange(port: Int, request: [UInt8], limit: Duration, readReply: Bool = true) -> [UInt8]? {
        guard let fd = connect(port: port) else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: Int(limit.components.seconds), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var sent = 0
        while sent < request.count {
            let n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }
            sent += n
        }
        guard readReply else { return [] }
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            reply += buffer[0..<n]
            if reply.count > 1 << 20 { break }
        }
        return reply
    }
}
