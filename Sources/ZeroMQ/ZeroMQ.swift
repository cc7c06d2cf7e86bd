import CZeroMQ
import Foundation

/// An error from libzmq, with the operation that failed and errno's text.
public struct ZMQError: Error, CustomStringConvertible, Equatable {
    public let code: Int32
    public let operation: String

    public init(_ operation: String, code: Int32 = zmq_errno()) {
        self.operation = operation
        self.code = code
    }

    public var description: String {
        "\(operation): \(String(cString: zmq_strerror(code))) (errno \(code))"
    }

    public var isInterrupted: Bool { code == EINTR }
    public var wouldBlock: Bool { code == EAGAIN }
}

/// libzmq's version as (major, minor, patch).
public func zmqVersion() -> (major: Int, minor: Int, patch: Int) {
    var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
    zmq_version(&major, &minor, &patch)
    return (Int(major), Int(minor), Int(patch))
}

/// A ZeroMQ context. Sockets keep their context alive, so the context is
/// terminated only after every socket made from it has been closed.
public final class Context {
    let handle: UnsafeMutableRawPointer

    public init(ioThreads: Int = 1) throws {
        guard let handle = zmq_ctx_new() else { throw ZMQError("zmq_ctx_new") }
        self.handle = handle
        zmq_ctx_set(handle, ZMQ_IO_THREADS, Int32(ioThreads))
    }

    deinit {
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }

    public func socket(_ type: SocketType) throws -> Socket {
        try Socket(context: self, type: type)
    }
}

public enum SocketType {
    case pair, pub, sub, req, rep, dealer, router, pull, push

    var rawValue: Int32 {
        switch self {
        case .pair: return ZMQ_PAIR
        case .pub: return ZMQ_PUB
        case .sub: return ZMQ_SUB
        case .req: return ZMQ_REQ
        case .rep: return ZMQ_REP
        case .dealer: return ZMQ_DEALER
        case .router: return ZMQ_ROUTER
        case .pull: return ZMQ_PULL
        case .push: return ZMQ_PUSH
        }
    }
}

/// One ZeroMQ socket. Not thread-safe, like the libzmq socket it wraps: use a
/// socket from one thread at a time.
public final class Socket {
    public let context: Context
    private var handle: UnsafeMutableRawPointer?

    init(context: Context, type: SocketType) throws {
        guard let handle = zmq_socket(context.handle, type.rawValue) else {
            throw ZMQError("zmq_socket")
        }
        self.context = context
        self.handle = handle
    }

    deinit { close() }

    var rawHandle: UnsafeMutableRawPointer {
        guard let handle else { preconditionFailure("socket used after close()") }
        return handle
    }

    public var isClosed: Bool { handle == nil }

    public func close() {
        guard let handle else { return }
        zmq_close(handle)
        self.handle = nil
    }

    public func bind(_ endpoint: String) throws {
        guard zmq_bind(rawHandle, endpoint) == 0 else { throw ZMQError("bind \(endpoint)") }
    }

    public func connect(_ endpoint: String) throws {
        guard zmq_connect(rawHandle, endpoint) == 0 else { throw ZMQError("connect \(endpoint)") }
    }

    public func disconnect(_ endpoint: String) throws {
        guard zmq_disconnect(rawHandle, endpoint) == 0 else { throw ZMQError("disconnect \(endpoint)") }
    }

    public func unbind(_ endpoint: String) throws {
        guard zmq_unbind(rawHandle, endpoint) == 0 else { throw ZMQError("unbind \(endpoint)") }
    }

    /// The endpoint last bound, with the port the system chose for `tcp://host:*`.
    public var lastEndpoint: String {
        get throws { try stringOption(ZMQ_LAST_ENDPOINT) }
    }

    // MARK: sending

    /// Sends a multipart message. Returns false when `dontWait` is set and the
    /// message could not be queued without blocking.
    @discardableResult
    public func send(_ frames: [Data], dontWait: Bool = false) throws -> Bool {
        precondition(!frames.isEmpty, "a message has at least one frame")
        for (index, frame) in frames.enumerated() {
            var flags: Int32 = dontWait ? ZMQ_DONTWAIT : 0
            if index < frames.count - 1 { flags |= ZMQ_SNDMORE }
            let sent = try sendFrame(frame, flags: flags)
            // Only the first frame can meet a full queue; later frames of the
            // same message are always accepted once the first one was.
            if !sent { return false }
        }
        return true
    }

    @discardableResult
    public func send(_ frames: [[UInt8]], dontWait: Bool = false) throws -> Bool {
        try send(frames.map { Data($0) }, dontWait: dontWait)
    }

    private func sendFrame(_ frame: Data, flags: Int32) throws -> Bool {
        while true {
            let rc = frame.withUnsafeBytes { raw -> Int32 in
                zmq_send(rawHandle, raw.baseAddress, raw.count, flags)
            }
            if rc >= 0 { return true }
            let error = ZMQError("send")
            if error.isInterrupted { continue }
            if error.wouldBlock && flags & ZMQ_DONTWAIT != 0 { return false }
            throw error
        }
    }

    // MARK: receiving

    /// Receives one multipart message; nil when `dontWait` is set and none is
    /// waiting, or when the receive timeout expired.
    public func receive(dontWait: Bool = false) throws -> [Data]? {
        var frames: [Data] = []
        var message = zmq_msg_t()
        zmq_msg_init(&message)
        defer { zmq_msg_close(&message) }
        while true {
            let flags: Int32 = (dontWait && frames.isEmpty) ? ZMQ_DONTWAIT : 0
            let rc = zmq_msg_recv(&message, rawHandle, flags)
            if rc < 0 {
                let error = ZMQError("receive")
                if error.isInterrupted { continue }
                if error.wouldBlock && frames.isEmpty { return nil }
                throw error
            }
            let size = zmq_msg_size(&message)
            if size > 0, let data = zmq_msg_data(&message) {
                frames.append(Data(bytes: data, count: size))
            } else {
                frames.append(Data())
            }
            if zmq_msg_more(&message) == 0 { return frames }
        }
    }

    public func receiveBytes(dontWait: Bool = false) throws -> [[UInt8]]? {
        try receive(dontWait: dontWait)?.map { [UInt8]($0) }
    }

    // MARK: options

    public func setOption(_ option: Int32, _ value: Int32) throws {
        var value = value
        guard zmq_setsockopt(rawHandle, option, &value, MemoryLayout<Int32>.size) == 0 else {
            throw ZMQError("setsockopt \(option)")
        }
    }

    public func setOption(_ option: Int32, _ bytes: [UInt8]) throws {
        let rc = bytes.withUnsafeBytes { raw in
            zmq_setsockopt(rawHandle, option, raw.baseAddress, raw.count)
        }
        guard rc == 0 else { throw ZMQError("setsockopt \(option)") }
    }

    public func setOption(_ option: Int32, _ string: String) throws {
        try setOption(option, Array(string.utf8))
    }

    public func intOption(_ option: Int32) throws -> Int32 {
        var value: Int32 = 0
        var size = MemoryLayout<Int32>.size
        guard zmq_getsockopt(rawHandle, option, &value, &size) == 0 else {
            throw ZMQError("getsockopt \(option)")
        }
        return value
    }

    public func bytesOption(_ option: Int32, capacity: Int = 256) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: capacity)
        var size = capacity
        let rc = buffer.withUnsafeMutableBytes { raw in
            zmq_getsockopt(rawHandle, option, raw.baseAddress, &size)
        }
        guard rc == 0 else { throw ZMQError("getsockopt \(option)") }
        return Array(buffer[0..<size])
    }

    public func stringOption(_ option: Int32) throws -> String {
        var bytes = try bytesOption(option)
        while bytes.last == 0 { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// How long, in milliseconds, unsent messages are kept after close (-1: forever).
    public func setLinger(_ milliseconds: Int) throws { try setOption(ZMQ_LINGER, Int32(milliseconds)) }
    public func setRoutingID(_ id: [UInt8]) throws { try setOption(ZMQ_ROUTING_ID, id) }
    public func routingID() throws -> [UInt8] { try bytesOption(ZMQ_ROUTING_ID) }
    public func setSendHighWaterMark(_ messages: Int) throws { try setOption(ZMQ_SNDHWM, Int32(messages)) }
    public func setReceiveHighWaterMark(_ messages: Int) throws { try setOption(ZMQ_RCVHWM, Int32(messages)) }
    public func setReceiveTimeout(_ milliseconds: Int) throws { try setOption(ZMQ_RCVTIMEO, Int32(milliseconds)) }
    public func setSendTimeout(_ milliseconds: Int) throws { try setOption(ZMQ_SNDTIMEO, Int32(milliseconds)) }
    public func setReconnectInterval(_ milliseconds: Int, max: Int) throws {
        try setOption(ZMQ_RECONNECT_IVL, Int32(milliseconds))
        try setOption(ZMQ_RECONNECT_IVL_MAX, Int32(max))
    }
    /// Queue messages only to completed connections.
    public func setImmediate(_ on: Bool) throws { try setOption(ZMQ_IMMEDIATE, on ? 1 : 0) }
    /// ROUTER: fail with EHOSTUNREACH instead of dropping messages to unknown peers.
    public func setRouterMandatory(_ on: Bool) throws { try setOption(ZMQ_ROUTER_MANDATORY, on ? 1 : 0) }
    /// ROUTER: a new connection with a routing id in use takes it over.
    public func setRouterHandover(_ on: Bool) throws { try setOption(ZMQ_ROUTER_HANDOVER, on ? 1 : 0) }
    /// ZMTP heartbeats: PING every `interval`, drop the connection after `timeout`
    /// without traffic, and ask the peer to time out after `ttl` (all milliseconds).
    public func setHeartbeat(interval: Int, timeout: Int, ttl: Int) throws {
        try setOption(ZMQ_HEARTBEAT_IVL, Int32(interval))
        try setOption(ZMQ_HEARTBEAT_TIMEOUT, Int32(timeout))
        try setOption(ZMQ_HEARTBEAT_TTL, Int32(ttl))
    }
    public func setSubscribe(_ prefix: [UInt8]) throws { try setOption(ZMQ_SUBSCRIBE, prefix) }

    // MARK: CURVE

    /// Makes this socket a CURVE server with the given Z85 secret key.
    public func makeCurveServer(secretKey: String) throws {
        try setOption(ZMQ_CURVE_SERVER, 1)
        try setOption(ZMQ_CURVE_SECRETKEY, secretKey)
    }

    /// Makes this socket a CURVE client of a server with the given Z85 public key.
    public func makeCurveClient(serverPublicKey: String, keyPair: CurveKeyPair) throws {
        try setOption(ZMQ_CURVE_SERVERKEY, serverPublicKey)
        try setOption(ZMQ_CURVE_PUBLICKEY, keyPair.publicKey)
        try setOption(ZMQ_CURVE_SECRETKEY, keyPair.secretKey)
    }

    /// The ZAP domain handed to the authentication handler for this socket.
    public func setZAPDomain(_ domain: String) throws { try setOption(ZMQ_ZAP_DOMAIN, domain) }
}

/// A CURVE key pair, both keys Z85-encoded (40 characters).
public struct CurveKeyPair: Equatable {
    public let publicKey: String
    public let secretKey: String

    public static func generate() throws -> CurveKeyPair {
        var publicKey = [CChar](repeating: 0, count: 41)
        var secretKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&publicKey, &secretKey) == 0 else { throw ZMQError("zmq_curve_keypair") }
        return CurveKeyPair(publicKey: String(cString: publicKey), secretKey: String(cString: secretKey))
    }

    /// The public key that belongs to a Z85 secret key.
    public static func publicKey(forSecret secretKey: String) throws -> String {
        var publicKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_public(&publicKey, secretKey) == 0 else { throw ZMQError("zmq_curve_public") }
        return String(cString: publicKey)
    }

    public init(publicKey: String, secretKey: String) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }
}

/// Which of the polled sockets have a message waiting; `timeout` in
/// milliseconds (-1 waits forever). An interrupted poll returns no socket ready.
public func poll(_ sockets: [Socket], timeout: Int) throws -> [Bool] {
    var items = sockets.map {
        zmq_pollitem_t(socket: $0.rawHandle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
    }
    let rc = zmq_poll(&items, Int32(items.count), timeout)
    if rc < 0 {
        let error = ZMQError("poll")
        if error.isInterrupted { return Array(repeating: false, count: sockets.count) }
        throw error
    }
    return items.map { $0.revents & Int16(ZMQ_POLLIN) != 0 }
}

/// A ZAP (ZeroMQ authentication protocol, RFC 27) handler: answers the
/// authentication requests of every socket of a context that sets a ZAP domain
/// or uses CURVE, on a thread of its own, by asking `authorize`. Call `stop()`
/// before the context goes away.
public final class ZAPHandler {
    /// What a connecting peer presents.
    public struct Request {
        public let domain: String
        public let address: String
        public let mechanism: String
        /// For CURVE: the client's 32-byte public key.
        public let credentials: [[UInt8]]
    }

    private let socket: Socket
    private let authorize: (Request) -> Bool
    private let stopLock = NSLock()
    private var stopRequested = false
    private let finished = DispatchSemaphore(value: 0)

    public init(context: Context, authorize: @escaping (Request) -> Bool) throws {
        socket = try context.socket(.rep)
        try socket.setLinger(0)
        try socket.bind("inproc://zeromq.zap.01")
        self.authorize = authorize
        let thread = Thread { [self] in self.serve() }
        thread.name = "zap-handler"
        thread.start()
    }

    /// Stops answering and closes the handler's socket.
    public func stop() {
        stopLock.lock()
        let already = stopRequested
        stopRequested = true
        stopLock.unlock()
        if !already { finished.wait() }
    }

    private var shouldStop: Bool {
        stopLock.lock()
        defer { stopLock.unlock() }
        return stopRequested
    }

    private func serve() {
        defer {
            socket.close()
            finished.signal()
        }
        while !shouldStop {
            guard let ready = try? poll([socket], timeout: 100), ready[0],
                  let frames = try? socket.receiveBytes(), frames.count >= 6 else { continue }
            let text = { (bytes: [UInt8]) in String(decoding: bytes, as: UTF8.self) }
            let request = Request(domain: text(frames[2]), address: text(frames[3]),
                                  mechanism: text(frames[5]), credentials: Array(frames.dropFirst(6)))
            let allowed = text(frames[0]) == "1.0" && authorize(request)
            let reply: [[UInt8]] = [
                Array("1.0".utf8), frames[1],
                Array((allowed ? "200" : "400").utf8),
                Array((allowed ? "OK" : "not authorised").utf8),
                [], [],
            ]
            _ = try? socket.send(reply)
        }
    }
}
