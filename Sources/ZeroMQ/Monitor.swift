import CZeroMQ
import Foundation

/// Z85, ZeroMQ's text encoding of binary keys (RFC 32): 4 bytes become 5 characters.
public enum Z85 {
    /// Encodes bytes whose count is a multiple of 4.
    public static func encode(_ bytes: [UInt8]) -> String? {
        guard bytes.count % 4 == 0 else { return nil }
        var text = [CChar](repeating: 0, count: bytes.count * 5 / 4 + 1)
        guard zmq_z85_encode(&text, bytes, bytes.count) != nil else { return nil }
        return String(cString: text)
    }

    /// Decodes a Z85 string whose length is a multiple of 5; nil when it is not valid Z85.
    public static func decode(_ text: String) -> [UInt8]? {
        let characters = Array(text.utf8)
        guard characters.count % 5 == 0,
              characters.allSatisfy({ alphabet.contains($0) }) else { return nil }
        var bytes = [UInt8](repeating: 0, count: characters.count * 4 / 5)
        guard zmq_z85_decode(&bytes, text) != nil else { return nil }
        return bytes
    }

    private static let alphabet = Set(
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#".utf8)
}

/// Reports a socket's connection events (libzmq's `zmq_socket_monitor`) on a
/// PAIR socket of the same context, read without blocking with `nextEvent()`.
/// Read it regularly: once a thousand events wait, libzmq's I/O thread stalls.
public final class SocketMonitor {
    public struct Event: Equatable {
        public let kind: Kind
        /// The event's value: for handshake failures, the ZAP status code or protocol error.
        public let value: UInt32
        public let endpoint: String
    }

    public enum Kind: Equatable {
        case connected, disconnected, handshakeSucceeded
        /// The peer's ZAP handler refused our credentials.
        case handshakeFailedAuthentication
        /// The handshake broke off: mechanisms differ, a key is wrong, or a frame was malformed.
        case handshakeFailedProtocol
        case handshakeFailedOther
        case other(UInt16)

        init(_ code: UInt16) {
            switch Int32(code) {
            case ZMQ_EVENT_CONNECTED: self = .connected
            case ZMQ_EVENT_DISCONNECTED: self = .disconnected
            case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: self = .handshakeSucceeded
            case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: self = .handshakeFailedAuthentication
            case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL: self = .handshakeFailedProtocol
            case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL: self = .handshakeFailedOther
            default: self = .other(code)
            }
        }
    }

    private let reader: Socket
    private let monitored: Socket

    private static let counterLock = NSLock()
    private static var counter = 0

    /// Watches connection, disconnection and handshake events of `socket`.
    public init(_ socket: Socket) throws {
        SocketMonitor.counterLock.lock()
        SocketMonitor.counter += 1
        let address = "inproc://socket-monitor-\(ProcessInfo.processInfo.processIdentifier)-\(SocketMonitor.counter)"
        SocketMonitor.counterLock.unlock()
        let events = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED
            | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
        guard zmq_socket_monitor(socket.rawHandle, address, events) == 0 else {
            throw ZMQError("zmq_socket_monitor")
        }
        monitored = socket
        reader = try socket.context.socket(.pair)
        try reader.setLinger(0)
        try reader.connect(address)
    }

    /// The next event if one is waiting.
    public func nextEvent() -> Event? {
        guard !reader.isClosed, let frames = try? reader.receiveBytes(dontWait: true), frames.count == 2,
              frames[0].count == 6 else { return nil }
        // libzmq writes both numbers in the host's byte order.
        let code = frames[0].withUnsafeBytes { $0.loadUnaligned(as: UInt16.self) }
        let value = frames[0].withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 2, as: UInt32.self) }
        return Event(kind: Kind(code), value: value, endpoint: String(decoding: frames[1], as: UTF8.self))
    }

    deinit { close() }

    /// Stops monitoring. libzmq's I/O thread blocks on a monitor nobody reads,
    /// so the monitor stops before its reader goes away.
    public func close() {
        guard !reader.isClosed else { return }
        if !monitored.isClosed { zmq_socket_monitor(monitored.rawHandle, nil, 0) }
        reader.close()
    }
}
