import Foundation
import GRDB

/// When and where a shard's latest attempt ran.
public struct ShardTime: Equatable, Sendable {
    public var worker: String?
    public var startedAt: Double
    /// nil while the attempt runs.
    public var endedAt: Double?
}

extension StoreTransaction {
    /// Every shard's latest attempt, by shard id (shards never attempted are absent).
    public func latestAttemptTimes() throws -> [String: ShardTime] {
        let rows = try Row.fetchAll(db.cachedStatement(sql: """
            SELECT s.id, a.worker, a.started_at, a.ended_at FROM attempts a JOIN shards s ON s.seq = a.shard_seq
            WHERE a.attempt = (SELECT max(attempt) FROM attempts WHERE shard_seq = a.shard_seq)
            """))
        return Dictionary(rows.map { ($0["id"] as String, ShardTime(worker: $0["worker"], startedAt: $0["started_at"], endedAt: $0["ended_at"])) },
                          uniquingKeysWith: { a, _ in a })
    }
}
