import Foundation

/// The wire protocol between coordinator (ROUTER) and workers (DEALER).
///
/// A message is one frame, `magic "CSW" | version (1 byte) | type (1 byte) | JSON body`,
/// followed for artifact chunks by one frame of raw bytes. Decoding never traps:
/// anything malformed is a `ProtocolError`, which the receiver logs and drops.
public enum WireProtocol {
    public static let version: UInt8 = 1
    static let magic: [UInt8] = Array("CSW".utf8)
    /// Artifacts travel in pieces of this many bytes.
    public static let chunkSize = 1 << 20
}

public struct ProtocolError: Error, CustomStringConvertible, Equatable {
    public let description: String
    init(_ description: String) { self.description = description }
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
    public var slots: Int
    /// Shards this worker still runs or has unacknowledged reports for (after a reconnect).
    public var running: [LeaseKey]
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

    var typeCode: UInt8 {
        switch self {
        case .hello: return 1
        case .request: return 2
        case .heartbeat: return 3
        case .progress: return 4
        case .result: return 5
        case .failure: return 6
        case .checkpoint: return 7
        case .put: return 8
        case .get: return 9
        case .welcome: return 20
        case .leases: return 21
        case .ack: return 22
        case .cancel: return 23
        case .chunk: return 24
        case .missing: return 25
        case .rehello: return 26
        case .refused: return 27
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
        frame.append(typeCode)
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
            throw ProtocolError("protocol version \(head[3]) is not supported (this side speaks \(WireProtocol.version))")
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
        if head[4] != 8 && head[4] != 24 && frames.count != 1 {
            throw ProtocolError("message type \(head[4]) has \(frames.count) frames, expected 1")
        }
        switch head[4] {
        case 1: return .hello(try body(Hello.self))
        case 2: return .request(try body(Count.self).count)
        case 3: return .heartbeat
        case 4: return .progress(try body(ProgressReport.self))
        case 5: return .result(try body(ResultReport.self))
        case 6: return .failure(try body(FailureReport.self))
        case 7: return .checkpoint(try body(CheckpointReport.self))
        case 8:
            let header = try body(ChunkHeader.self)
            let data = try binary()
            // Written so that no offset or size, however large, can overflow.
            guard header.offset >= 0, header.size >= 0, header.offset <= header.size - data.count else {
                throw ProtocolError("chunk of \(header.hash) outside its size")
            }
            return .put(header, data)
        case 9: return .get(try body(ChunkRequest.self))
        case 20: return .welcome(try body(Welcome.self))
        case 21: return .leases(try body([Lease].self))
        case 22: return .ack(try body(LeaseKey.self))
        case 23: return .cancel(try body(LeaseKey.self))
        case 24: return .chunk(try body(ChunkHeader.self), try binary())
        case 25:
            let missing = try body(Missing.self)
            return .missing(missing.lease, missing.hashes)
        case 26: return .rehello
        case 27: return .refused(try body(Text.self).message)
        default: throw ProtocolError("unknown message type \(head[4])")
        }
    }
}

/// Whether a string is a lowercase hex SHA-256 digest, safe as a file name.
func isArtifactHash(_ text: String) -> Bool {
    text.utf8.count == 64 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
}
