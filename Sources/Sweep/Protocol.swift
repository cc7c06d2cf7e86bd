import Foundation

/// The wire protocol between coordinator (ROUTER) and workers (DEALER).
///
/// A message is one frame, `magic "CSW" | version (1 byte) | type (1 byte) | JSON body`,
/// followed for artifact chunks by one frame of raw bytes. Decoding never traps:
/// anything malformed is a `ProtocolError`, which the receiver logs and drops.
public enum WireProtocol {
    /// 2: hellos carry the worker process's incarnation, failures whether they are permanent.
    /// 3: a lease holds one slot, and a request stands until filled (workers lend idle slots' threads).
    public static let version: UInt8 = 3
    static let magic: [UInt8] = Array("CSW".utf8)
    /// Artifacts travel in pieces of this many bytes.
    public static let chunkSize = 1 << 20
}

public struct ProtocolError: Error, CustomStringConvertible, Equatable {
    public let description: String
    /// A peer speaking another version of the protocol (worth telling the operator apart from noise).
    public let isVersionMismatch: Bool
    init(_ description: String, isVersionMismatch: Bool = false) {
        self.description = description
        self.isVersionMismatch = isVersionMismatch
    }
}

public struct LeaseKey: Codable, Hashable, CustomStringConvertible {
    public var shard: String
    public var attempt: Int
    public init(shard: String, attempt: Int) {
        self.shard = shard
        self.attempt = attempt
    }
    public var description: String { "\(shard)#\(attempt)" }
}

public struct Hello: Codable, Equatable {
    public var worker: String
    /// Random per worker process: a process restarted under the same name is another incarnation,
    /// and inherits nothing of the one before it.
    public var incarnation: String
    public var slots: Int
    /// Shards this worker still runs or has unacknowledged reports for (after a reconnect).
    public var running: [LeaseKey]

    public init(worker: String, incarnation: String, slots: Int, running: [LeaseKey]) {
        self.worker = worker
        self.incarnation = incarnation
        self.slots = slots
        self.running = running
    }
}

public struct Welcome: Codable, Equatable {
    public var heartbeatSeconds: Double
    public var workerDeadSeconds: Double
}

public struct ProgressReport: Codable, Equatable {
    public var lease: LeaseKey
    public var step: Int
    public var total: Int
    public var loss: Double?
}

public struct ResultReport: Codable, Equatable {
    public var lease: LeaseKey
    /// Output name to artifact hash; the artifacts are uploaded before the report.
    public var outputs: [String: String]
    public var summary: String
}

public struct FailureReport: Codable, Equatable {
    public var lease: LeaseKey
    public var error: String
    public var logTail: String?
    /// The failure is deterministic (a configuration, tokenizer or task error): another attempt
    /// would fail the same way, so the shard fails at once.
    public var permanent: Bool

    public init(lease: LeaseKey, error: String, logTail: String?, permanent: Bool = false) {
        self.lease = lease
        self.error = error
        self.logTail = logTail
        self.permanent = permanent
    }
}

public struct CheckpointReport: Codable, Equatable {
    public var lease: LeaseKey
    public var hash: String
    public var step: Int
}

public struct ChunkHeader: Codable, Equatable {
    public var hash: String
    public var size: Int
    public var offset: Int
    /// What the artifact is (checkpoint, data, curve...), for the store.
    public var kind: String?
}

public struct ChunkRequest: Codable, Equatable {
    public var hash: String
    public var offset: Int
    public var length: Int
}

/// The type byte of a message's first frame: each message's one code.
enum MessageType: UInt8 {
    // worker → coordinator
    case hello = 1, request, heartbeat, progress, result, failure, checkpoint, put, get
    // coordinator → worker
    case welcome = 20, leases, ack, cancel, chunk, missing, rehello, refused

    /// Artifact chunks carry their bytes in a second frame.
    var carriesData: Bool { self == .put || self == .chunk }
}

public enum Message: Equatable {
    // worker → coordinator
    case hello(Hello)
    /// Asks for up to this many more leases.
    case request(Int)
    case heartbeat
    case progress(ProgressReport)
    case result(ResultReport)
    case failure(FailureReport)
    case checkpoint(CheckpointReport)
    case put(ChunkHeader, Data)
    case get(ChunkRequest)
    // coordinator → worker
    case welcome(Welcome)
    case leases([Lease])
    /// The report about this lease is committed (or was stale and is ignored).
    case ack(LeaseKey)
    /// Stop running this lease: it is no longer yours.
    case cancel(LeaseKey)
    case chunk(ChunkHeader, Data)
    /// The store lacks these artifacts: upload them, then repeat the report.
    case missing(LeaseKey, [String])
    /// The coordinator does not know this connection: say hello again.
    case rehello
    case refused(String)

    var type: MessageType {
        switch self {
        case .hello: return .hello
        case .request: return .request
        case .heartbeat: return .heartbeat
        case .progress: return .progress
        case .result: return .result
        case .failure: return .failure
        case .checkpoint: return .checkpoint
        case .put: return .put
        case .get: return .get
        case .welcome: return .welcome
        case .leases: return .leases
        case .ack: return .ack
        case .cancel: return .cancel
        case .chunk: return .chunk
        case .missing: return .missing
        case .rehello: return .rehello
        case .refused: return .refused
        }
    }

    public var name: String { String(describing: self).prefix { $0 != "(" }.description }

    private struct Missing: Codable { var lease: LeaseKey; var hashes: [String] }
    private struct Count: Codable { var count: Int }
    private struct Text: Codable { var message: String }
    private struct Empty: Codable {}

    public func encoded() -> [Data] {
        let encoder = JSONEncoder()
        func body<T: Encodable>(_ value: T) -> Data { try! encoder.encode(value) }
        var payload: Data
        var extra: Data?
        switch self {
        case .hello(let value): payload = body(value)
        case .request(let count): payload = body(Count(count: count))
        case .heartbeat, .rehello: payload = body(Empty())
        case .progress(let value): payload = body(value)
        case .result(let value): payload = body(value)
        case .failure(let value): payload = body(value)
        case .checkpoint(let value): payload = body(value)
        case .put(let header, let data), .chunk(let header, let data):
            payload = body(header)
            extra = data
        case .get(let value): payload = body(value)
        case .welcome(let value): payload = body(value)
        case .leases(let value): payload = body(value)
        case .ack(let value), .cancel(let value): payload = body(value)
        case .missing(let lease, let hashes): payload = body(Missing(lease: lease, hashes: hashes))
        case .refused(let message): payload = body(Text(message: message))
        }
        var frame = Data(WireProtocol.magic)
        frame.append(WireProtocol.version)
        frame.append(type.rawValue)
        frame.append(payload)
        return extra.map { [frame, $0] } ?? [frame]
    }

    /// Decodes the frames of one message (without the ROUTER's identity frame).
    public static func decode(_ frames: [Data]) throws -> Message {
        guard let first = frames.first else { throw ProtocolError("empty message") }
        let head = [UInt8](first.prefix(5))
        guard head.count == 5, Array(head[0..<3]) == WireProtocol.magic else {
            throw ProtocolError("not a sweep protocol frame (\(first.count) bytes, bad magic)")
        }
        guard head[3] == WireProtocol.version else {
            throw ProtocolError("protocol version \(head[3]) is not supported (this side speaks \(WireProtocol.version))",
                                isVersionMismatch: true)
        }
        let payload = first.dropFirst(5)
        let decoder = JSONDecoder()
        func body<T: Decodable>(_ type: T.Type) throws -> T {
            do {
                return try decoder.decode(type, from: payload)
            } catch {
                throw ProtocolError("malformed body of message type \(head[4]): \(error)")
            }
        }
        func binary() throws -> Data {
            guard frames.count == 2 else { throw ProtocolError("chunk message without its data frame") }
            return frames[1]
        }
        guard let type = MessageType(rawValue: head[4]) else { throw ProtocolError("unknown message type \(head[4])") }
        if !type.carriesData && frames.count != 1 {
            throw ProtocolError("message type \(head[4]) has \(frames.count) frames, expected 1")
        }
        switch type {
        case .hello: return .hello(try body(Hello.self))
        case .request: return .request(try body(Count.self).count)
        case .heartbeat: return .heartbeat
        case .progress: return .progress(try body(ProgressReport.self))
        case .result: return .result(try body(ResultReport.self))
        case .failure: return .failure(try body(FailureReport.self))
        case .checkpoint: return .checkpoint(try body(CheckpointReport.self))
        case .put:
            let header = try body(ChunkHeader.self)
            let data = try binary()
            // Written so that no offset or size, however large, can overflow.
            guard header.offset >= 0, header.size >= 0, header.offset <= header.size - data.count else {
                throw ProtocolError("chunk of \(header.hash) outside its size")
            }
            return .put(header, data)
        case .get: return .get(try body(ChunkRequest.self))
        case .welcome: return .welcome(try body(Welcome.self))
        case .leases: return .leases(try body([Lease].self))
        case .ack: return .ack(try body(LeaseKey.self))
        case .cancel: return .cancel(try body(LeaseKey.self))
        case .chunk: return .chunk(try body(ChunkHeader.self), try binary())
        case .missing:
            let missing = try body(Missing.self)
            return .missing(missing.lease, missing.hashes)
        case .rehello: return .rehello
        case .refused: return .refused(try body(Text.self).message)
        }
    }
}

/// Whether a string is a lowercase hex SHA-256 digest, safe as a file name.
func isArtifactHash(_ text: String) -> Bool {
    text.utf8.count == 64 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
}
