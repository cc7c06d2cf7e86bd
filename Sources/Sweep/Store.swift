import Foundation
import GRDB

public enum ShardState: String, Codable {
    case pending, leased, done, failed
}

/// A shard handed to a worker.
public struct Lease: Codable, Equatable {
    public var shard: String
    public var attempt: Int
    public var key: LeaseKey { LeaseKey(shard: shard, attempt: attempt) }
    public var kind: String
    public var params: String
    /// Output artifacts of the dependencies, keyed `<dependency kind>.<output name>`.
    public var inputs: [String: ArtifactRef]
    /// The latest intermediate checkpoint of an earlier attempt, to continue from.
    public var resume: ArtifactRef?
    public var resumeStep: Int?
}

public struct ArtifactRef: Codable, Equatable, Hashable {
    public var hash: String
    public var size: Int
}

/// What became of a result or failure report.
public enum ReportOutcome: Equatable {
    case recorded
    /// The attempt is no longer the shard's lease (a late or duplicate report).
    case stale
    /// The result names artifacts the store does not have yet.
    case missingArtifacts([String])
}

public enum FailureOutcome: Equatable {
    case retrying(notBefore: Double)
    case failed
    case stale
}

/// One row of `circuitry status`.
public struct ShardStatus: Codable, Equatable {
    public var id: String
    public var kind: String
    public var state: ShardState
    public var attempts: Int
    public var maxAttempts: Int
    public var worker: String?
    public var step: Int?
    public var totalSteps: Int?
    public var loss: Double?
    public var error: String?
    public var logTail: String?
    public var summary: String?
}

public struct StateCounts: Codable, Equatable {
    public var pending = 0, leased = 0, done = 0, failed = 0
    public var total: Int { pending + leased + done + failed }
    public var finished: Bool { pending == 0 && leased == 0 }
}

/// The coordinator's store: SQLite in WAL mode. Every state change happens in
/// a write transaction that commits before anyone is told about it.
public final class Store {
    public let url: URL
    let queue: DatabaseQueue

    public enum Mode {
        /// Creates the file and its schema if needed (a new sweep).
        case create
        /// The store of an existing sweep, for writing; never creates anything.
        case existing
        /// The store of an existing sweep, read only.
        case readOnly
    }

    /// Opens the store at `url`. Only `.create` may create the file or its schema; the other modes
    /// want a store that already holds a sweep, and say which file is wrong when it does not.
    public init(url: URL, mode: Mode) throws {
        self.url = url
        var configuration = Configuration()
        configuration.readonly = mode == .readOnly
        configuration.busyMode = .timeout(10)
        if mode != .create {
            try Store.checkIsSweepStore(url)
        }
        if mode != .readOnly {
            configuration.prepareDatabase { db in
                try db.execute(sql: "PRAGMA journal_mode = WAL")
                // In WAL mode NORMAL keeps every commit across a process kill; only
                // a power loss can drop the latest transactions.
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
            }
        }
        do {
            queue = try DatabaseQueue(path: url.path, configuration: configuration)
            switch mode {
            case .create: try Store.migrator.migrate(queue)
            case .existing, .readOnly:
                guard try queue.read({ try $0.tableExists("sweep") && $0.tableExists("shards") }) else {
                    throw SweepError("\(url.path) is an SQLite file but not a sweep store (it has no sweep table)")
                }
                // A truncated or damaged file can read well until the first missing page: look at every page now.
                let check = try queue.read { try String.fetchAll($0, sql: "PRAGMA quick_check") }
                guard check == ["ok"] else {
                    throw SweepError("\(url.path) is corrupt (was it truncated?): \(check.prefix(3).joined(separator: "; "))")
                }
                if mode == .existing { try Store.migrator.migrate(queue) }
            }
        } catch let error as DatabaseError {
            throw Store.describe(error, url: url)
        }
    }

    /// A file that cannot be a store is refused before SQLite opens it (which would write into an empty file).
    private static func checkIsSweepStore(_ url: URL) throws {
        guard let handle = FileHandle(forReadingAtPath: url.path) else {
            throw SweepError("no sweep store at \(url.path)")
        }
        defer { try? handle.close() }
        let header = (try? handle.read(upToCount: 16)) ?? Data()
        if header.isEmpty { throw SweepError("\(url.path) is empty: not a sweep store (was it truncated?)") }
        guard header == Data("SQLite format 3\u{0}".utf8) else {
            throw SweepError("\(url.path) is not a sweep store (not an SQLite database)")
        }
    }

    /// SQLite's error, with the file it is about and what it means for the user.
    static func describe(_ error: DatabaseError, url: URL) -> SweepError {
        switch error.resultCode {
        case .SQLITE_FULL: return SweepError("\(url.path): no space left on the device (SQLite: \(error.message ?? "full"))")
        case .SQLITE_NOTADB: return SweepError("\(url.path) is not a sweep store (not an SQLite database)")
        case .SQLITE_CORRUPT: return SweepError("\(url.path) is corrupt (SQLite: \(error.message ?? "malformed"))")
        case .SQLITE_CANTOPEN: return SweepError("\(url.path): cannot open the sweep store")
        case .SQLITE_READONLY: return SweepError("\(url.path): the sweep store is read-only")
        default: return SweepError("\(url.path): \(error.message ?? "\(error)") (SQLite \(error.resultCode))")
        }
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE sweep (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    name TEXT NOT NULL, spec TEXT NOT NULL, created_at REAL NOT NULL);
                CREATE TABLE shards (
                    seq INTEGER PRIMARY KEY,
                    id TEXT NOT NULL UNIQUE,
                    kind TEXT NOT NULL,
                    priority INTEGER NOT NULL DEFAULT 0,
                    params TEXT NOT NULL,
                    state TEXT NOT NULL,
                    waiting_on INTEGER NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    max_attempts INTEGER NOT NULL,
                    not_before REAL NOT NULL DEFAULT 0,
                    lease_owner TEXT, lease_attempt INTEGER, lease_expiry REAL,
                    last_error TEXT, log_tail TEXT,
                    progress_step INTEGER, progress_total INTEGER, progress_loss REAL,
                    resume_hash TEXT, resume_size INTEGER, resume_step INTEGER,
                    updated_at REAL NOT NULL);
                CREATE INDEX shards_ready ON shards(state, waiting_on, priority, seq);
                CREATE TABLE dependencies (
                    needs_seq INTEGER NOT NULL, shard_seq INTEGER NOT NULL,
                    PRIMARY KEY (needs_seq, shard_seq)) WITHOUT ROWID;
                CREATE INDEX dependencies_of ON dependencies(shard_seq);
                CREATE TABLE attempts (
                    shard_seq INTEGER NOT NULL, attempt INTEGER NOT NULL,
                    worker TEXT, started_at REAL NOT NULL, ended_at REAL,
                    outcome TEXT, error TEXT,
                    PRIMARY KEY (shard_seq, attempt)) WITHOUT ROWID;
                CREATE TABLE results (
                    shard_seq INTEGER PRIMARY KEY, attempt INTEGER NOT NULL,
                    summary TEXT NOT NULL, recorded_at REAL NOT NULL);
                CREATE TABLE outputs (
                    shard_seq INTEGER NOT NULL, name TEXT NOT NULL, hash TEXT NOT NULL,
                    PRIMARY KEY (shard_seq, name)) WITHOUT ROWID;
                CREATE TABLE artifacts (
                    hash TEXT PRIMARY KEY, size INTEGER NOT NULL, kind TEXT NOT NULL,
                    created_at REAL NOT NULL) WITHOUT ROWID;
                CREATE TABLE events (
                    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL,
                    shard TEXT, event TEXT NOT NULL, detail TEXT);
                """)
        }
        // Leasing looks for shards that continue from a checkpoint first; this keeps that a lookup.
        migrator.registerMigration("v2 resumable index") { db in
            try db.execute(sql: """
                CREATE INDEX shards_resumable ON shards(state, waiting_on, priority, seq) WHERE resume_hash IS NOT NULL
                """)
        }
        return migrator
    }

    /// Ready shards go out by kind, then in plan order: training is the long
    /// path of the DAG, so every model starts training before circuits are pruned.
    static func priority(ofKind kind: String) -> Int {
        switch kind {
        case ShardKindName.prepare: return 0
        case ShardKindName.train: return 1
        default: return 2
        }
    }

    /// Runs `body` in one write transaction.
    public func write<T>(_ body: (StoreTransaction) throws -> T) throws -> T {
        do {
            return try queue.write { db in try body(StoreTransaction(db: db)) }
        } catch let error as DatabaseError {
            throw Store.describe(error, url: url)
        }
    }

    public func read<T>(_ body: (StoreTransaction) throws -> T) throws -> T {
        do {
            return try queue.read { db in try body(StoreTransaction(db: db)) }
        } catch let error as DatabaseError {
            throw Store.describe(error, url: url)
        }
    }
}

/// The store's operations, inside a transaction.
public struct StoreTransaction {
    let db: Database

    /// Statements are compiled once per connection and reused: the dispatch path runs them thousands of times a second.
    private func execute(sql: String, arguments: StatementArguments = StatementArguments()) throws {
        try db.cachedStatement(sql: sql).execute(arguments: arguments)
    }

    // MARK: the sweep and its plan

    public func hasSweep() throws -> Bool {
        try Int.fetchOne(db.cachedStatement(sql: "SELECT count(*) FROM sweep"))! > 0
    }

    public func sweepSpec() throws -> SweepSpec {
        guard let text = try String.fetchOne(db.cachedStatement(sql: "SELECT spec FROM sweep WHERE id = 1")) else {
            throw SweepError("the store holds no sweep")
        }
        return try JSONDecoder().decode(SweepSpec.self, from: Data(text.utf8))
    }

    /// Records the sweep and its planned shards, all pending.
    public func createSweep(_ spec: SweepSpec, shards: [PlannedShard], now: Double) throws {
        let specJSON = String(decoding: try JSONEncoder().encode(spec), as: UTF8.self)
        try execute(sql: "INSERT INTO sweep (id, name, spec, created_at) VALUES (1, ?, ?, ?)",
                       arguments: [spec.name, specJSON, now])
        try insertShards(shards.map { ($0.id, $0.kind, $0.params.encoded(), $0.dependencies) },
                         maxAttempts: spec.retries.maxAttempts, now: now)
        try log(nil, "sweep_created", "\(shards.count) shards", now: now)
    }

    /// Inserts shards in plan order; dependencies must come earlier in the list or already be stored.
    public func insertShards(_ shards: [(id: String, kind: String, params: String, dependencies: [String])],
                             maxAttempts: Int, now: Double) throws {
        let insert = try db.makeStatement(sql: """
            INSERT INTO shards (id, kind, priority, params, state, waiting_on, max_attempts, updated_at)
            VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)
            """)
        let link = try db.makeStatement(sql: """
            INSERT INTO dependencies (needs_seq, shard_seq) SELECT seq, ? FROM shards WHERE id = ?
            """)
        for shard in shards {
            try insert.execute(arguments: [shard.id, shard.kind, Store.priority(ofKind: shard.kind), shard.params,
                                           shard.dependencies.count, maxAttempts, now])
            let seq = db.lastInsertedRowID
            for dependency in shard.dependencies {
                try link.execute(arguments: [seq, dependency])
                if db.changesCount != 1 {
                    throw SweepError("shard \(shard.id) depends on unknown shard \(dependency)")
                }
            }
        }
    }

    /// Grows the sweep to `spec`: the shards of its plan that the store lacks are added as pending
    /// and the stored sweep becomes `spec`. Every stored shard must be planned again with the same
    /// kind and parameters, so nothing finished is redone or made stale; otherwise nothing changes
    /// and the error names the first shard that would. Returns the shards added.
    public func extendSweep(_ spec: SweepSpec, shards planned: [PlannedShard], now: Double) throws -> [String] {
        let (stored, added) = try compare(with: spec, planned)
        for shard in stored {
            guard let plannedShard = shard.planned else {
                throw SweepError("shard \(shard.id) of the run is not in the new grid; a sweep can grow, not shrink (start a new run instead)")
            }
            guard plannedShard.kind == shard.kind, shard.differing.isEmpty else {
                throw SweepError("the change would alter shard \(shard.id) (\(shard.differing.joined(separator: ", "))), whose work the run keeps; only new grid points can be added (start a new run to change the rest)")
            }
        }
        try insertShards(added.map { ($0.id, $0.kind, $0.params.encoded(), $0.dependencies) },
                         maxAttempts: spec.retries.maxAttempts, now: now)
        try recountWaiting()
        try storeSpec(spec)
        try log(nil, "sweep_extended", "\(added.count) shards", now: now)
        return added.map(\.id)
    }

    /// Gives every prune shard the pruning settings of `spec` (for example a finer λ grid), keeping
    /// their states: `repruneAll` then sends the finished ones back to pending. Every other shard,
    /// and the grid, must be planned unchanged; the error names the first shard that is not.
    /// Returns how many prune shards changed.
    public func changePruning(to spec: SweepSpec, shards planned: [PlannedShard], now: Double) throws -> Int {
        let (stored, added) = try compare(with: spec, planned)
        var changed: [(seq: Int64, params: String)] = []
        for shard in stored {
            guard let plannedShard = shard.planned, plannedShard.kind == shard.kind else {
                throw SweepError("shard \(shard.id) of the run is not in the sweep file's grid; only the pruning settings may change")
            }
            guard shard.differing.allSatisfy({ $0 == "prune" }) else {
                throw SweepError("the sweep file would alter shard \(shard.id) (\(shard.differing.joined(separator: ", "))); only the pruning settings may change")
            }
            guard !shard.differing.isEmpty else { continue }
            guard shard.state != "leased" else {
                throw SweepError("shard \(shard.id) is running; stop the sweep before changing its pruning")
            }
            changed.append((shard.seq, plannedShard.params.encoded()))
        }
        if let new = added.first {
            throw SweepError("the sweep file adds shard \(new.id); add grid points with `circuitry extend` first")
        }
        for (seq, params) in changed {
            try execute(sql: "UPDATE shards SET params = ?, updated_at = ? WHERE seq = ?", arguments: [params, now, seq])
        }
        try storeSpec(spec)
        try log(nil, "pruning_changed", "\(changed.count) shards", now: now)
        return changed.count
    }

    /// A stored shard beside its counterpart in a new plan of the sweep (nil when the plan has none),
    /// with the sections of its parameters that the plan changes.
    private struct StoredAgainstPlan {
        var seq: Int64
        var id: String
        var kind: String
        var state: String
        var planned: PlannedShard?
        var differing: [String]
    }

    /// The run's shards against `planned`, a plan of `spec` (which must be the run's sweep), and the
    /// planned shards the run does not hold yet.
    private func compare(with spec: SweepSpec, _ planned: [PlannedShard]) throws -> (stored: [StoredAgainstPlan], added: [PlannedShard]) {
        let storedSpec = try sweepSpec()
        guard spec.name == storedSpec.name else {
            throw SweepError("the sweep file is sweep \(spec.name), the run holds sweep \(storedSpec.name)")
        }
        let plannedByID = Dictionary(planned.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let stored = try Row.fetchAll(db, sql: "SELECT seq, id, kind, params, state FROM shards ORDER BY seq").map { row in
            let id: String = row["id"]
            let plannedShard = plannedByID[id]
            let differing = try plannedShard.map { try ShardParams.decode(row["params"]).differingSections(from: $0.params) } ?? []
            return StoredAgainstPlan(seq: row["seq"], id: id, kind: row["kind"], state: row["state"], planned: plannedShard,
                                     differing: differing)
        }
        let storedIDs = Set(stored.map(\.id))
        return (stored, planned.filter { !storedIDs.contains($0.id) })
    }

    private func storeSpec(_ spec: SweepSpec) throws {
        let specJSON = String(decoding: try JSONEncoder().encode(spec), as: UTF8.self)
        try execute(sql: "UPDATE sweep SET spec = ? WHERE id = 1", arguments: [specJSON])
    }

    // MARK: leases

    /// Leases up to `count` ready shards to `owner`, by kind priority, then those that continue
    /// from a checkpoint (their work is paid for and they finish first), then plan order.
    public func lease(owner: String, count: Int, now: Double, expiry: Double) throws -> [Lease] {
        // Two index-ordered queries merged, rather than one ORDER BY that would sort every ready shard.
        let ready = "SELECT seq, id, kind, params, priority, attempts, resume_hash, resume_size, resume_step FROM shards " +
            "WHERE state = 'pending' AND waiting_on = 0 AND not_before <= ?"
        let resumable = try Row.fetchAll(db.cachedStatement(sql: ready + " AND resume_hash IS NOT NULL ORDER BY priority, seq LIMIT ?"),
                                         arguments: [now, count])
        let fresh = try Row.fetchAll(db.cachedStatement(sql: ready + " AND resume_hash IS NULL ORDER BY priority, seq LIMIT ?"),
                                     arguments: [now, count])
        let rows = (resumable + fresh).sorted { a, b in
            let keyA = (a["priority"] as Int, (a["resume_hash"] as String?) == nil ? 1 : 0, a["seq"] as Int64)
            let keyB = (b["priority"] as Int, (b["resume_hash"] as String?) == nil ? 1 : 0, b["seq"] as Int64)
            return keyA < keyB
        }.prefix(count)
        var leases: [Lease] = []
        for row in rows {
            let seq: Int64 = row["seq"]
            let attempt = (row["attempts"] as Int) + 1
            try execute(sql: """
                UPDATE shards SET state = 'leased', attempts = ?, lease_owner = ?, lease_attempt = ?,
                lease_expiry = ?, progress_step = NULL, progress_total = NULL, progress_loss = NULL, updated_at = ?
                WHERE seq = ?
                """, arguments: [attempt, owner, attempt, expiry, now, seq])
            try execute(sql: "INSERT INTO attempts (shard_seq, attempt, worker, started_at) VALUES (?, ?, ?, ?)",
                           arguments: [seq, attempt, owner, now])
            var resume: ArtifactRef?
            if let hash: String = row["resume_hash"] { resume = ArtifactRef(hash: hash, size: row["resume_size"]) }
            leases.append(Lease(shard: row["id"], attempt: attempt, kind: row["kind"], params: row["params"],
                                inputs: try inputs(ofShard: seq), resume: resume, resumeStep: row["resume_step"]))
        }
        return leases
    }

    private func inputs(ofShard seq: Int64) throws -> [String: ArtifactRef] {
        let rows = try Row.fetchAll(db.cachedStatement(sql: """
            SELECT s.kind, o.name, o.hash, a.size FROM dependencies d
            JOIN shards s ON s.seq = d.needs_seq
            JOIN outputs o ON o.shard_seq = d.needs_seq
            JOIN artifacts a ON a.hash = o.hash
            WHERE d.shard_seq = ?
            """), arguments: [seq])
        var inputs: [String: ArtifactRef] = [:]
        for row in rows {
            inputs["\(row["kind"] as String).\(row["name"] as String)"] = ArtifactRef(hash: row["hash"], size: row["size"])
        }
        return inputs
    }

    /// The shards leased now, with their owners.
    public func activeLeases() throws -> [(lease: LeaseKey, owner: String)] {
        try Row.fetchAll(db.cachedStatement(sql: "SELECT id, lease_attempt, lease_owner FROM shards WHERE state = 'leased'"))
            .map { (LeaseKey(shard: $0["id"], attempt: $0["lease_attempt"]), $0["lease_owner"]) }
    }

    /// Hands a lease to a new owner (a worker that reconnected still running it).
    public func adoptLease(_ lease: LeaseKey, owner: String, now: Double) throws -> Bool {
        try execute(sql: """
            UPDATE shards SET lease_owner = ?, updated_at = ? WHERE id = ? AND state = 'leased' AND lease_attempt = ?
            """, arguments: [owner, now, lease.shard, lease.attempt])
        guard db.changesCount == 1 else { return false }
        try log(lease.shard, "lease_adopted", "attempt \(lease.attempt) by \(owner)", now: now)
        return true
    }

    private func currentSeq(_ lease: LeaseKey) throws -> Int64? {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT seq FROM shards WHERE id = ? AND state = 'leased' AND lease_attempt = ?"),
                           arguments: [lease.shard, lease.attempt])
    }

    // MARK: results and failures

    /// Records the result of the leased attempt exactly once; anything else is stale.
    public func recordResult(_ lease: LeaseKey, outputs: [String: String], summary: String,
                             now: Double) throws -> ReportOutcome {
        let shard = lease.shard, attempt = lease.attempt
        guard let seq = try currentSeq(lease) else { return .stale }
        let missing = try outputs.values.filter { try !hasArtifact($0) }
        if !missing.isEmpty { return .missingArtifacts(missing.sorted()) }
        try execute(sql: "INSERT INTO results (shard_seq, attempt, summary, recorded_at) VALUES (?, ?, ?, ?)",
                       arguments: [seq, attempt, summary, now])
        for (name, hash) in outputs {
            try execute(sql: "INSERT INTO outputs (shard_seq, name, hash) VALUES (?, ?, ?)", arguments: [seq, name, hash])
        }
        try execute(sql: """
            UPDATE shards SET state = 'done', lease_owner = NULL, lease_expiry = NULL, last_error = NULL,
            updated_at = ? WHERE seq = ?
            """, arguments: [now, seq])
        try execute(sql: "UPDATE attempts SET ended_at = ?, outcome = 'done' WHERE shard_seq = ? AND attempt = ?",
                       arguments: [now, seq, attempt])
        try execute(sql: """
            UPDATE shards SET waiting_on = waiting_on - 1
            WHERE seq IN (SELECT shard_seq FROM dependencies WHERE needs_seq = ?)
            """, arguments: [seq])
        try log(shard, "done", "attempt \(attempt)", now: now)
        return .recorded
    }

    /// Records a failed attempt: back to pending after a backoff, or failed once the
    /// attempts are used up or the failure is `permanent` (and then every shard that needs it too).
    public func recordFailure(_ lease: LeaseKey, error: String, logTail: String?, permanent: Bool = false,
                              retries: RetrySection, now: Double) throws -> FailureOutcome {
        let shard = lease.shard, attempt = lease.attempt
        guard let seq = try currentSeq(lease) else { return .stale }
        try execute(sql: "UPDATE attempts SET ended_at = ?, outcome = 'failed', error = ? WHERE shard_seq = ? AND attempt = ?",
                       arguments: [now, error, seq, attempt])
        let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT attempts, max_attempts FROM shards WHERE seq = ?"), arguments: [seq])!
        let attempts: Int = row["attempts"], maxAttempts: Int = row["max_attempts"]
        if permanent || attempts >= maxAttempts {
            try execute(sql: """
                UPDATE shards SET state = 'failed', lease_owner = NULL, lease_expiry = NULL, last_error = ?,
                log_tail = ?, updated_at = ? WHERE seq = ?
                """, arguments: [error, logTail, now, seq])
            try log(shard, "failed", "attempt \(attempt)\(permanent ? " (not retried: it would fail the same way)" : ""): \(error)", now: now)
            try failDependents(of: seq, cause: shard, now: now)
            return .failed
        }
        let backoff = min(retries.backoffMaxSeconds, retries.backoffSeconds * pow(2, Double(attempts - 1)))
        try execute(sql: """
            UPDATE shards SET state = 'pending', lease_owner = NULL, lease_expiry = NULL, last_error = ?,
            log_tail = ?, not_before = ?, updated_at = ? WHERE seq = ?
            """, arguments: [error, logTail, now + backoff, now, seq])
        try log(shard, "retry", "attempt \(attempt) failed: \(error)", now: now)
        return .retrying(notBefore: now + backoff)
    }

    /// Puts a lease that its coordinator abandoned (it stopped or restarted while the shard ran)
    /// back to pending at once. The shard did not fail, so this uses none of its attempts: a long
    /// training shard survives any number of stopped and resumed runs, and continues from its
    /// last checkpoint.
    public func releaseInterrupted(_ lease: LeaseKey, reason: String, now: Double) throws -> Bool {
        guard let seq = try currentSeq(lease) else { return false }
        try execute(sql: "UPDATE attempts SET ended_at = ?, outcome = 'interrupted', error = ? WHERE shard_seq = ? AND attempt = ?",
                       arguments: [now, reason, seq, lease.attempt])
        try execute(sql: """
            UPDATE shards SET state = 'pending', max_attempts = max_attempts + 1, lease_owner = NULL,
            lease_expiry = NULL, not_before = 0, last_error = ?, updated_at = ? WHERE seq = ?
            """, arguments: [reason, now, seq])
        try log(lease.shard, "interrupted", "attempt \(lease.attempt): \(reason)", now: now)
        return true
    }

    private func failDependents(of seq: Int64, cause: String, now: Double) throws {
        var frontier = [seq]
        while let next = frontier.popLast() {
            let dependents = try Row.fetchAll(db.cachedStatement(sql: """
                SELECT s.seq, s.id FROM dependencies d JOIN shards s ON s.seq = d.shard_seq
                WHERE d.needs_seq = ? AND s.state = 'pending'
                """), arguments: [next])
            for row in dependents {
                let message = "not run: the shard it needs, \(cause), failed"
                try execute(sql: "UPDATE shards SET state = 'failed', last_error = ?, updated_at = ? WHERE seq = ?",
                               arguments: [message, now, row["seq"] as Int64])
                try log(row["id"], "failed", message, now: now)
                frontier.append(row["seq"])
            }
        }
    }

    /// Recounts, for every pending shard, the dependencies that are not done yet.
    private func recountWaiting() throws {
        try execute(sql: """
            UPDATE shards SET waiting_on = (
                SELECT count(*) FROM dependencies d JOIN shards n ON n.seq = d.needs_seq
                WHERE d.shard_seq = shards.seq AND n.state != 'done')
            WHERE state = 'pending'
            """)
    }

    /// Puts failed shards back to pending with a fresh set of attempts. Their errors go: they
    /// describe the attempts before, which the attempts table keeps.
    public func retryFailed(maxAttempts: Int, now: Double) throws -> Int {
        try execute(sql: """
            UPDATE shards SET state = 'pending', max_attempts = attempts + ?, not_before = 0, last_error = NULL,
            log_tail = NULL, updated_at = ? WHERE state = 'failed'
            """, arguments: [maxAttempts, now])
        let count = db.changesCount
        try recountWaiting()
        try log(nil, "retry_failed", "\(count) shards", now: now)
        return count
    }

    /// Puts every finished prune shard (done or failed) back to pending with fresh attempts, for
    /// pruning the trained models again after a change to the pruning code; their old circuits
    /// leave the results (the attempts' history stays) and every trained model is kept. Refused
    /// while a prune shard is leased, since its result would come from the old pruning.
    public func repruneAll(maxAttempts: Int, now: Double) throws -> Int {
        let leased = try Int.fetchOne(db, sql: "SELECT count(*) FROM shards WHERE kind = 'prune' AND state = 'leased'") ?? 0
        guard leased == 0 else {
            throw SweepError("\(leased) prune shards are running; stop the sweep before pruning again")
        }
        let finished = "SELECT seq FROM shards WHERE kind = 'prune' AND state IN ('done', 'failed')"
        try execute(sql: "DELETE FROM outputs WHERE shard_seq IN (\(finished))")
        try execute(sql: "DELETE FROM results WHERE shard_seq IN (\(finished))")
        try execute(sql: """
            UPDATE shards SET state = 'pending', max_attempts = attempts + ?, not_before = 0, last_error = NULL,
            log_tail = NULL, progress_step = NULL, progress_total = NULL, progress_loss = NULL, updated_at = ?
            WHERE kind = 'prune' AND state IN ('done', 'failed')
            """, arguments: [maxAttempts, now])
        let count = db.changesCount
        try recountWaiting()
        try log(nil, "reprune", "\(count) shards", now: now)
        return count
    }

    public func recordProgress(_ lease: LeaseKey, step: Int, total: Int, loss: Double?, now: Double) throws {
        try execute(sql: """
            UPDATE shards SET progress_step = ?, progress_total = ?, progress_loss = ?, updated_at = ?
            WHERE id = ? AND state = 'leased' AND lease_attempt = ?
            """, arguments: [step, total, loss, now, lease.shard, lease.attempt])
    }

    /// Keeps an intermediate checkpoint of the leased attempt for a later attempt to continue from.
    public func recordCheckpoint(_ lease: LeaseKey, hash: String, step: Int, now: Double) throws -> ReportOutcome {
        let shard = lease.shard, attempt = lease.attempt
        guard try currentSeq(lease) != nil else { return .stale }
        guard let size = try Int.fetchOne(db.cachedStatement(sql: "SELECT size FROM artifacts WHERE hash = ?"), arguments: [hash]) else {
            return .missingArtifacts([hash])
        }
        try execute(sql: "UPDATE shards SET resume_hash = ?, resume_size = ?, resume_step = ? WHERE id = ?",
                       arguments: [hash, size, step, shard])
        try log(shard, "checkpoint", "attempt \(attempt) step \(step)", now: now)
        return .recorded
    }

    // MARK: artifacts

    public func hasArtifact(_ hash: String) throws -> Bool {
        try Int.fetchOne(db.cachedStatement(sql: "SELECT count(*) FROM artifacts WHERE hash = ?"), arguments: [hash])! > 0
    }

    public func artifactSize(_ hash: String) throws -> Int? {
        try Int.fetchOne(db.cachedStatement(sql: "SELECT size FROM artifacts WHERE hash = ?"), arguments: [hash])
    }

    public func registerArtifact(hash: String, size: Int, kind: String, now: Double) throws {
        try execute(sql: "INSERT OR IGNORE INTO artifacts (hash, size, kind, created_at) VALUES (?, ?, ?, ?)",
                       arguments: [hash, size, kind, now])
    }

    /// The output artifacts of a done shard.
    public func outputs(ofShard shard: String) throws -> [String: String] {
        let rows = try Row.fetchAll(db.cachedStatement(sql: """
            SELECT o.name, o.hash FROM outputs o JOIN shards s ON s.seq = o.shard_seq WHERE s.id = ?
            """), arguments: [shard])
        return Dictionary(uniqueKeysWithValues: rows.map { ($0["name"] as String, $0["hash"] as String) })
    }

    // MARK: reading

    public func counts() throws -> StateCounts {
        var counts = StateCounts()
        for row in try Row.fetchAll(db.cachedStatement(sql: "SELECT state, count(*) AS n FROM shards GROUP BY state")) {
            switch ShardState(rawValue: row["state"]) {
            case .pending: counts.pending = row["n"]
            case .leased: counts.leased = row["n"]
            case .done: counts.done = row["n"]
            case .failed: counts.failed = row["n"]
            case nil: break
            }
        }
        return counts
    }

    public func shards(states: [ShardState]? = nil, limit: Int? = nil) throws -> [ShardStatus] {
        var sql = """
            SELECT s.id, s.kind, s.state, s.attempts, s.max_attempts, s.lease_owner, s.progress_step,
            s.progress_total, s.progress_loss, s.last_error, s.log_tail, r.summary
            FROM shards s LEFT JOIN results r ON r.shard_seq = s.seq
            """
        if let states { sql += " WHERE s.state IN (\(states.map { "'\($0.rawValue)'" }.joined(separator: ",")))" }
        sql += " ORDER BY s.seq"
        if let limit { sql += " LIMIT \(limit)" }
        return try Row.fetchAll(db.cachedStatement(sql: sql)).map { row in
            let state = ShardState(rawValue: row["state"]) ?? .pending
            return ShardStatus(id: row["id"], kind: row["kind"], state: state, attempts: row["attempts"],
                               maxAttempts: row["max_attempts"], worker: row["lease_owner"],
                               step: row["progress_step"], totalSteps: row["progress_total"], loss: row["progress_loss"],
                               error: state == .done ? nil : row["last_error"],
                               logTail: state == .failed ? row["log_tail"] : nil, summary: row["summary"])
        }
    }

    /// One shard as it is stored, for the report.
    public struct ShardRecord {
        public var id: String
        public var kind: String
        public var params: String
        public var state: String
        public var attempts: Int
        public var lastError: String?
        public var summary: String?
    }

    /// Every shard in plan order, with its result's summary once done.
    public func shardRecords() throws -> [ShardRecord] {
        try Row.fetchAll(db.cachedStatement(sql: """
            SELECT s.id, s.kind, s.params, s.state, s.attempts, s.last_error, r.summary
            FROM shards s LEFT JOIN results r ON r.shard_seq = s.seq ORDER BY s.seq
            """)).map {
            ShardRecord(id: $0["id"], kind: $0["kind"], params: $0["params"], state: $0["state"], attempts: $0["attempts"],
                        lastError: $0["last_error"], summary: $0["summary"])
        }
    }

    /// Every attempt of a shard, in order: who ran it and how it ended.
    public func attempts(ofShard shard: String) throws -> [(attempt: Int, worker: String?, outcome: String?, error: String?)] {
        try Row.fetchAll(db.cachedStatement(sql: """
            SELECT a.attempt, a.worker, a.outcome, a.error FROM attempts a JOIN shards s ON s.seq = a.shard_seq
            WHERE s.id = ? ORDER BY a.attempt
            """), arguments: [shard]).map { ($0["attempt"], $0["worker"], $0["outcome"], $0["error"]) }
    }

    /// The number of results recorded per shard (at most one, by the table's key).
    public func resultCount() throws -> Int {
        try Int.fetchOne(db.cachedStatement(sql: "SELECT count(*) FROM results"))!
    }

    public func events(limit: Int) throws -> [(at: Double, shard: String?, event: String, detail: String?)] {
        try Row.fetchAll(db.cachedStatement(sql: "SELECT at, shard, event, detail FROM events ORDER BY id DESC LIMIT ?"), arguments: [limit])
            .map { ($0["at"], $0["shard"], $0["event"], $0["detail"]) }
    }

    public func log(_ shard: String?, _ event: String, _ detail: String?, now: Double) throws {
        try execute(sql: "INSERT INTO events (at, shard, event, detail) VALUES (?, ?, ?, ?)",
                       arguments: [now, shard, event, detail])
    }
}

/// A sweep-level error with a message for the user.
public struct SweepError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
