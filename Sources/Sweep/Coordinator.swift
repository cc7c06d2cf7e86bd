import Foundation
import Logging
import ZeroMQ

/// Owns the store and hands shards to workers over a ROUTER socket
/// (the ZeroMQ guide's Paranoid Pirate pattern, with Titanic's rule that a
/// state change is committed before it is acknowledged).
public final class Coordinator {
    public let store: Store
    public let runDirectory: URL
    public private(set) var endpoint: String = ""
    private let spec: SweepSpec
    private let context: Context
    private let router: Socket
    private var authenticator: CurveAuthenticator?
    private var logger: Logger
    private let artifactsDirectory: URL

    private struct WorkerState {
        var name: String
        var wanted = 0
        var lastSeen: Double
        var leases: [LeaseKey: Double] = [:]  // lease → start time
    }

    private var workers: [Data: WorkerState] = [:]
    /// Leases found in the store at start-up, held for their workers to reclaim until the deadline.
    private var orphanLeases: [LeaseKey: Double] = [:]
    private var nextHeartbeat = 0.0
    private var nextLeaseAudit = 0.0
    private var stopRequested = false
    private var outgoing: [(Data, Message)] = []
    /// Counters for the dispatch benchmark and the logs.
    public private(set) var droppedFrames = 0
    public private(set) var resultsRecorded = 0

    /// Opens a coordinator on a run directory whose store already holds a sweep. Without
    /// `security`, only a loopback endpoint may be bound.
    public init(runDirectory: URL, bind: String, security: CoordinatorSecurity? = nil,
                logger: Logger = Logger(label: "coordinator")) throws {
        self.runDirectory = runDirectory
        self.logger = logger
        store = try Store(runDirectory: runDirectory)
        spec = try store.read { try $0.sweepSpec() }
        artifactsDirectory = runDirectory.appendingPathComponent("artifacts")
        try FileManager.default.createDirectory(at: artifactsDirectory.appendingPathComponent("incoming"),
                                                withIntermediateDirectories: true)
        context = try Context()
        router = try context.socket(.router)
        try router.setLinger(0)
        try router.setRouterHandover(true)
        try router.setRouterMandatory(false)
        try router.setSendHighWaterMark(100_000)
        try router.setReceiveHighWaterMark(100_000)
        authenticator = try Coordinator.secure(router, context: context, bind: bind, security: security, logger: logger)
        try router.bind(bind)
        endpoint = try router.lastEndpoint
        let now = Date().timeIntervalSince1970
        // Leases of an earlier coordinator process: their workers reconnect and
        // reclaim them; unclaimed ones go back to pending.
        for lease in try store.read({ try $0.activeLeases() }) {
            orphanLeases[LeaseKey(shard: lease.shard, attempt: lease.attempt)] = now + 2 * spec.timeouts.workerDeadSeconds
        }
        try store.write { try $0.log(nil, "coordinator_started", "\(endpoint), \(orphanLeases.count) leases to reclaim", now: now) }
        logger.info("coordinator listening on \(endpoint)")
    }

    /// Creates the store of a new sweep (or checks that the run directory holds this sweep).
    @discardableResult
    public static func prepareRunDirectory(_ runDirectory: URL, spec: SweepSpec) throws -> Bool {
        let store = try Store(runDirectory: runDirectory)
        return try store.write { tx in
            if try tx.hasSweep() {
                let existing = try tx.sweepSpec()
                guard existing == spec else {
                    throw SweepError("\(runDirectory.path) already holds a different sweep (\(existing.name)); use another --run-dir or resume it")
                }
                return false
            }
            try tx.createSweep(spec, shards: plan(spec), now: Date().timeIntervalSince1970)
            return true
        }
    }

    public func stop() { stopRequested = true }

    deinit { authenticator?.stop() }

    /// Serves until `shouldStop` says so (checked between batches) or `stop()` is called.
    public func run(while shouldContinue: () -> Bool = { true }) throws {
        while !stopRequested && shouldContinue() {
            try step(timeout: 100)
        }
        router.close()
        authenticator?.stop()
    }

    /// One turn of the loop: wait up to `timeout` ms for messages, handle every
    /// message waiting in one transaction, then reply, expire and dispatch.
    public func step(timeout: Int) throws {
        let ready = try poll([router], timeout: timeout)[0]
        let now = Date().timeIntervalSince1970
        var batch: [(Data, Message)] = []
        if ready {
            while batch.count < 2000, let frames = try router.receive(dontWait: true) {
                guard frames.count >= 2 else { droppedFrames += 1; continue }
                do {
                    batch.append((frames[0], try Message.decode(Array(frames.dropFirst()))))
                } catch {
                    droppedFrames += 1
                    logger.warning("dropped a frame from \(hex(frames[0])): \(error)")
                }
            }
        }
        try store.write { tx in
            for (identity, message) in batch {
                try handle(message, from: identity, tx: tx, now: now)
            }
            try expire(tx: tx, now: now)
            try dispatch(tx: tx, now: now)
        }
        // Committed: now the replies may go out.
        for (identity, message) in outgoing {
            _ = try? router.send([identity] + message.encoded(), dontWait: true)
        }
        outgoing.removeAll(keepingCapacity: true)
        if now >= nextHeartbeat {
            nextHeartbeat = now + spec.timeouts.heartbeatSeconds
            let heartbeat = Message.heartbeat.encoded()
            for identity in workers.keys { _ = try? router.send([identity] + heartbeat, dontWait: true) }
        }
    }

    private func reply(_ identity: Data, _ message: Message) { outgoing.append((identity, message)) }

    private func handle(_ message: Message, from identity: Data, tx: StoreTransaction, now: Double) throws {
        if case .hello(let hello) = message {
            try welcome(hello, identity: identity, tx: tx, now: now)
            return
        }
        guard workers[identity] != nil else {
            // A connection from before a restart, or of a worker presumed dead.
            switch message {
            case .put(let header, let data): try receiveChunk(header, data, tx: tx, now: now)
            default: break
            }
            // Every message is answered; the worker says hello again at most once a second.
            reply(identity, .rehello)
            return
        }
        workers[identity]!.lastSeen = now
        switch message {
        case .heartbeat: break
        case .request(let count): workers[identity]!.wanted += max(0, min(count, 10_000))
        case .progress(let report):
            try tx.recordProgress(shard: report.lease.shard, attempt: report.lease.attempt, step: report.step,
                                  total: report.total, loss: report.loss, now: now)
        case .result(let report):
            switch try tx.recordResult(shard: report.lease.shard, attempt: report.lease.attempt,
                                       outputs: report.outputs, summary: report.summary, now: now) {
            case .recorded:
                resultsRecorded += 1
                workers[identity]!.leases[report.lease] = nil
                reply(identity, .ack(report.lease))
            case .stale:
                logger.info("ignored a late result for \(report.lease)")
                workers[identity]!.leases[report.lease] = nil
                reply(identity, .ack(report.lease))
            case .missingArtifacts(let hashes):
                reply(identity, .missing(report.lease, hashes))
            }
        case .failure(let report):
            let outcome = try tx.recordFailure(shard: report.lease.shard, attempt: report.lease.attempt,
                                               error: report.error, logTail: report.logTail, retries: spec.retries, now: now)
            if outcome != .stale { logger.warning("\(report.lease) failed: \(report.error)") }
            workers[identity]!.leases[report.lease] = nil
            reply(identity, .ack(report.lease))
        case .checkpoint(let report):
            switch try tx.recordCheckpoint(shard: report.lease.shard, attempt: report.lease.attempt,
                                           hash: report.hash, step: report.step, now: now) {
            case .recorded, .stale: reply(identity, .ack(report.lease))
            case .missingArtifacts(let hashes): reply(identity, .missing(report.lease, hashes))
            }
        case .put(let header, let data): try receiveChunk(header, data, tx: tx, now: now)
        case .get(let request): try sendChunk(request, to: identity, tx: tx)
        case .hello, .welcome, .leases, .ack, .cancel, .chunk, .missing, .rehello, .refused:
            logger.warning("dropped a \(message.name) message, which workers do not send")
            droppedFrames += 1
        }
    }

    private func welcome(_ hello: Hello, identity: Data, tx: StoreTransaction, now: Double) throws {
        var state = WorkerState(name: hello.worker, lastSeen: now)
        // A repeated hello on the same connection keeps the leases sent since the first one.
        if let existing = workers[identity] { state.leases = existing.leases }
        for key in hello.running {
            if try tx.adoptLease(shard: key.shard, attempt: key.attempt, owner: hello.worker, now: now) {
                orphanLeases[key] = nil
                for other in workers.keys { workers[other]!.leases[key] = nil }
                state.leases[key] = state.leases[key] ?? now
            } else {
                reply(identity, .cancel(key))
            }
        }
        // The same worker on an earlier connection: whatever it no longer runs was lost in between.
        for (other, previous) in workers where previous.name == hello.worker && other != identity {
            for key in previous.leases.keys where state.leases[key] == nil {
                _ = try tx.recordFailure(shard: key.shard, attempt: key.attempt,
                                         error: "worker \(hello.worker) reconnected without it", logTail: nil,
                                         retries: spec.retries, now: now)
            }
            workers[other] = nil
        }
        workers[identity] = state
        try tx.log(nil, "worker_joined", "\(hello.worker) with \(hello.slots) slots", now: now)
        logger.info("worker \(hello.worker) joined with \(hello.slots) slots")
        reply(identity, .welcome(Welcome(heartbeatSeconds: spec.timeouts.heartbeatSeconds,
                                         workerDeadSeconds: spec.timeouts.workerDeadSeconds)))
    }

    private func expire(tx: StoreTransaction, now: Double) throws {
        for (identity, worker) in workers where now - worker.lastSeen > spec.timeouts.workerDeadSeconds {
            logger.warning("worker \(worker.name) is silent for \(spec.timeouts.workerDeadSeconds)s: presumed dead")
            try tx.log(nil, "worker_lost", worker.name, now: now)
            for key in worker.leases.keys {
                _ = try tx.recordFailure(shard: key.shard, attempt: key.attempt,
                                         error: "worker \(worker.name) stopped answering", logTail: nil,
                                         retries: spec.retries, now: now)
            }
            workers[identity] = nil
        }
        for (key, deadline) in orphanLeases where now > deadline {
            orphanLeases[key] = nil
            if workers.values.contains(where: { $0.leases[key] != nil }) { continue }
            _ = try tx.recordFailure(shard: key.shard, attempt: key.attempt,
                                     error: "no worker reclaimed this lease after the coordinator restarted",
                                     logTail: nil, retries: spec.retries, now: now)
        }
        // Any lease that no connected worker holds (lost in a reconnect, or of an
        // earlier process) is given the grace a restart gives, then goes back.
        if now >= nextLeaseAudit {
            nextLeaseAudit = now + spec.timeouts.workerDeadSeconds
            let held = Set(workers.values.flatMap { $0.leases.keys })
            for lease in try tx.activeLeases() {
                let key = LeaseKey(shard: lease.shard, attempt: lease.attempt)
                if !held.contains(key) && orphanLeases[key] == nil {
                    orphanLeases[key] = now + spec.timeouts.workerDeadSeconds
                }
            }
        }
        if spec.timeouts.shardSeconds > 0 {
            for (identity, worker) in workers {
                for (key, started) in worker.leases where now - started > spec.timeouts.shardSeconds {
                    _ = try tx.recordFailure(shard: key.shard, attempt: key.attempt,
                                             error: "timed out after \(spec.timeouts.shardSeconds)s", logTail: nil,
                                             retries: spec.retries, now: now)
                    workers[identity]!.leases[key] = nil
                    reply(identity, .cancel(key))
                }
            }
        }
    }

    private func dispatch(tx: StoreTransaction, now: Double) throws {
        for (identity, worker) in workers where worker.wanted > 0 {
            let leases = try tx.lease(owner: worker.name, count: worker.wanted, now: now,
                                      expiry: now + spec.timeouts.workerDeadSeconds)
            if leases.isEmpty { return }
            workers[identity]!.wanted -= leases.count
            for lease in leases { workers[identity]!.leases[LeaseKey(shard: lease.shard, attempt: lease.attempt)] = now }
            reply(identity, .leases(leases))
        }
    }

    // MARK: artifacts

    private func artifactURL(_ hash: String) -> URL { artifactsDirectory.appendingPathComponent(hash) }

    /// An upload in progress, hashed as its chunks arrive.
    private struct Upload {
        var handle: FileHandle
        var hasher = SHA256()
        var received = 0
    }

    private var uploads: [String: Upload] = [:]

    /// Appends an uploaded chunk; the last one is verified against its hash and registered.
    private func receiveChunk(_ header: ChunkHeader, _ data: Data, tx: StoreTransaction, now: Double) throws {
        guard isArtifactHash(header.hash) else {
            logger.warning("dropped a chunk with a malformed hash")
            droppedFrames += 1
            return
        }
        if try tx.hasArtifact(header.hash) { return }
        let partial = artifactsDirectory.appendingPathComponent("incoming/\(header.hash)")
        if header.offset == 0 {
            try? uploads[header.hash]?.handle.close()
            _ = FileManager.default.createFile(atPath: partial.path, contents: nil)
            uploads[header.hash] = Upload(handle: try FileHandle(forWritingTo: partial))
        }
        // Chunks arrive in order on one connection; a gap means an upload was
        // interrupted, and the worker starts over when told the artifact is missing.
        guard var upload = uploads[header.hash], upload.received == header.offset else { return }
        try upload.handle.write(contentsOf: data)
        upload.hasher.update(data)
        upload.received += data.count
        uploads[header.hash] = upload
        guard upload.received == header.size else { return }
        uploads[header.hash] = nil
        try upload.handle.close()
        let actual = SHA256.hexString(upload.hasher.finalize())
        guard actual == header.hash else {
            logger.warning("upload of \(header.hash) arrived with hash \(actual); discarded")
            try? FileManager.default.removeItem(at: partial)
            return
        }
        try? FileManager.default.removeItem(at: artifactURL(header.hash))
        try FileManager.default.moveItem(at: partial, to: artifactURL(header.hash))
        try tx.registerArtifact(hash: header.hash, size: header.size, kind: header.kind ?? "file", now: now)
    }

    private func sendChunk(_ request: ChunkRequest, to identity: Data, tx: StoreTransaction) throws {
        guard isArtifactHash(request.hash), let size = try tx.artifactSize(request.hash),
              let handle = try? FileHandle(forReadingFrom: artifactURL(request.hash)) else {
            reply(identity, .refused("no artifact \(request.hash)"))
            return
        }
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(max(0, min(request.offset, size))))
        let data = try handle.read(upToCount: max(1, min(request.length, WireProtocol.chunkSize))) ?? Data()
        reply(identity, .chunk(ChunkHeader(hash: request.hash, size: size, offset: request.offset, kind: nil), data))
    }

    public var workerCount: Int { workers.count }
}

func hex(_ data: Data) -> String { data.prefix(16).map { String(format: "%02x", $0) }.joined() }
