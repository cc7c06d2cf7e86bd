import Foundation

/// Threads for a worker's shards. Each leased shard holds one slot; slots the coordinator has had
/// nothing to fill for a while are lent to the running shards, training first (the shards everything
/// else waits on), then the earliest started, and taken back as soon as new leases arrive. The engine's
/// results do not depend on the thread count, so lending changes only how fast a shard runs.
enum ThreadLending {
    struct Shard: Equatable {
        var key: LeaseKey
        var kind: String
        var startedAt: Double
    }

    /// Threads per running shard: one each, plus the `idleSlots` spread over them in priority order.
    static func allocate(running: [Shard], idleSlots: Int) -> [LeaseKey: Int] {
        let order = running.sorted {
            let (a, b) = ($0.kind == ShardKindName.train, $1.kind == ShardKindName.train)
            if a != b { return a }
            return ($0.startedAt, $0.key.description) < ($1.startedAt, $1.key.description)
        }
        let spare = max(0, idleSlots)
        var threads: [LeaseKey: Int] = [:]
        for (index, shard) in order.enumerated() {
            threads[shard.key] = 1 + spare / order.count + (index < spare % order.count ? 1 : 0)
        }
        return threads
    }
}

/// The file through which a worker tells a running child how many threads it may use, and the
/// child's side of it: read again at most every `rereadSeconds`, so a check per training or mask
/// step costs nothing.
final class ThreadAllowance {
    static let fileName = "threads"
    static let rereadSeconds = 0.25

    private let url: URL?
    private var value: Int
    private var lastRead = 0.0

    /// `path` nil: the allowance stays `initial`.
    init(path: String?, initial: Int) {
        url = path.map { URL(fileURLWithPath: $0) }
        value = max(1, initial)
    }

    /// The threads the worker allows now; a file that is missing or unreadable keeps the last value.
    func current() -> Int {
        guard let url else { return value }
        let now = Date().timeIntervalSince1970
        guard now - lastRead >= ThreadAllowance.rereadSeconds else { return value }
        lastRead = now
        if let text = try? String(contentsOf: url, encoding: .utf8),
           let n = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), n >= 1 {
            value = n
        }
        return value
    }

    /// Writes `threads` to `url` whole (a temporary file renamed over it), so a reader never sees half.
    static func write(_ threads: Int, to url: URL) throws {
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).new")
        try Data("\(threads)\n".utf8).write(to: temporary)
        guard rename(temporary.path, url.path) == 0 else {
            throw SweepError("cannot replace \(url.path): \(String(cString: strerror(errno)))")
        }
    }
}
