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

    /// Every shard's state and progress, without results or logs: read every few seconds while a sweep runs.
    public func shardProgress() throws -> [ShardStatus] {
        try Row.fetchAll(db.cachedStatement(sql: """
            SELECT id, kind, state, attempts, max_attempts, progress_step, progress_total, progress_loss FROM shards ORDER BY seq
            """)).map { row in
            ShardStatus(id: row["id"], kind: row["kind"], state: ShardState(rawValue: row["state"]) ?? .pending,
                        attempts: row["attempts"], maxAttempts: row["max_attempts"], worker: nil, step: row["progress_step"],
                        totalSteps: row["progress_total"], loss: row["progress_loss"], error: nil, logTail: nil, summary: nil)
        }
    }

    /// Seconds every shard's ended attempts ran, summed over its attempts, by shard id.
    public func busySeconds() throws -> [String: Double] {
        let rows = try Row.fetchAll(db.cachedStatement(sql: """
            SELECT s.id, sum(a.ended_at - a.started_at) AS seconds FROM attempts a JOIN shards s ON s.seq = a.shard_seq
            WHERE a.ended_at IS NOT NULL GROUP BY s.id
            """))
        return Dictionary(rows.map { ($0["id"] as String, $0["seconds"] as Double) }, uniquingKeysWith: { a, _ in a })
    }
}
