import Foundation
import Logging

/// The coordinator's timing, named once (as the ZeroMQ guide's ppqueue.c names its constants).
/// The sweep file's `timeouts` section sets the heartbeat and the time to presume a worker dead;
/// these are the rest, most of them in units of those.
enum CoordinatorTiming {
    /// The socket loop waits this long for a message before expiring and dispatching anyway.
    static let pollMilliseconds = 100
    /// Messages handled in one store transaction at most.
    static let maxBatch = 2000
    /// Leases found in the store at start-up wait this many worker-dead periods for their workers to reclaim them.
    static let reclaimGracePeriods = 2.0
    /// An upload with no chunk for one worker-dead period is abandoned and its partial file deleted.
    static let uploadIdlePeriods = 1.0
    /// One worker may upload this many artifacts at once; a shard's outputs are a handful.
    static let maxUploadsPerWorker = 16
    /// A request counts for at most this many leases.
    static let maxRequest = 10_000
    /// Dropped frames are logged one by one up to a burst, then counted per interval.
    static let dropLogBurst = 5
    static let dropLogIntervalSeconds = 10.0
}

/// A warning that may come thousands of times a second: the first few are logged, the rest are
/// counted and summed up once per interval.
struct LogThrottle {
    let burst: Int
    let interval: Double
    private var windowStart = -Double.infinity
    private var loggedInWindow = 0
    private var suppressedInWindow = 0
    private var unreported = 0

    init(burst: Int, interval: Double) {
        self.burst = burst
        self.interval = interval
    }

    private mutating func rollOver(now: Double) {
        guard now - windowStart >= interval else { return }
        unreported += suppressedInWindow
        suppressedInWindow = 0
        loggedInWindow = 0
        windowStart = now
    }

    /// Whether this occurrence is logged; otherwise it is counted.
    mutating func admit(now: Double) -> Bool {
        rollOver(now: now)
        guard loggedInWindow < burst else {
            suppressedInWindow += 1
            return false
        }
        loggedInWindow += 1
        return true
    }

    /// The occurrences counted and not logged in the intervals that are over (then the count restarts).
    mutating func takeSuppressed(now: Double) -> Int? {
        rollOver(now: now)
        defer { unreported = 0 }
        return unreported > 0 ? unreported : nil
    }
}

/// The coordinator's decisions, driven by messages and a clock the caller passes in: welcome,
/// leases, heartbeat expiry, results and failures, uploads and downloads, reclaiming leases after
/// a restart. It owns no socket: `process` takes the frames received and returns the replies, to
/// be sent once the transaction that justifies them has committed.
final class CoordinatorCore {
    let store: Store
    let spec: SweepSpec
    private let artifacts: ArtifactStore
    private let logger: Logger

    private struct WorkerState {
        var name: String
        var incarnation: String
        var slots: Int
        /// Slots asked for and not filled yet: a request stands until shards are ready for it.
        var wanted = 0
        var lastSeen: Double
        var leases: [LeaseKey: Double] = [:]  // lease → start time
    }

    /// An upload in progress: chunks arrive in order from one worker.
    private struct Upload {
        var owner: Data
        var partial: URL
        var received: Int
        var lastChunk: Double
    }

    private var workers: [Data: WorkerState] = [:]
    /// Leases found in the store at start-up (or held by no connected worker), with the time they go back.
    private var orphanLeases: [LeaseKey: Double] = [:]
    private var uploads: [String: Upload] = [:]
    private var nextHeartbeat = 0.0
    private var nextLeaseAudit = 0.0
    private var outgoing: [(identity: Data, message: Message)] = []
    private var dropLog = LogThrottle(burst: CoordinatorTiming.dropLogBurst, interval: CoordinatorTiming.dropLogIntervalSeconds)
    /// Peers of another protocol version, throttled apart so noise does not hide them.
    private var versionLog = LogThrottle(burst: CoordinatorTiming.dropLogBurst, interval: CoordinatorTiming.dropLogIntervalSeconds)
    private var turns = TurnClock()
    private(set) var droppedFrames = 0
    private(set) var resultsRecorded = 0

    private var workerDeadSeconds: Double { spec.timeouts.workerDeadSeconds }

    init(store: Store, artifacts: ArtifactStore, endpoint: String, logger: Logger, now: Double) throws {
        self.store = store
        self.artifacts = artifacts
        self.logger = logger
        spec = try store.read { try $0.sweepSpec() }
        // Partial uploads of an earlier coordinator process: their workers upload again when told.
        artifacts.removeStalePartials(olderThan: .distantFuture)
        // Leases of an earlier coordinator process: its local workers stopped with it, so theirs
        // go back at once (a checkpointed training then leases first); other workers reconnect
        // and reclaim theirs, and unclaimed ones go back after the grace.
        try store.write { tx in
            for active in try tx.activeLeases() {
                if active.owner.hasPrefix(LocalWorkerName.prefix) {
                    _ = try tx.releaseInterrupted(active.lease, reason: "its local worker stopped with the coordinator that started it",
                                                  now: now)
                } else {
                    orphanLeases[active.lease] = now + CoordinatorTiming.reclaimGracePeriods * spec.timeouts.workerDeadSeconds
                }
            }
        }
        try store.write { try $0.log(nil, "coordinator_started", "\(endpoint), \(orphanLeases.count) leases to reclaim", now: now) }
    }

    var workerCount: Int { workers.count }
    var uploadsInProgress: Int { uploads.count }

    /// Handles a batch of received messages (each the frames after the ROUTER's identity frame)
    /// in one transaction, then expires and dispatches; returns the replies to send after the commit.
    func process(_ batch: [(identity: Data, frames: [Data])], now: Double) throws -> [(identity: Data, message: Message)] {
        forgiveStall(now: now)
        var messages: [(Data, Message)] = []
        for (identity, frames) in batch {
            do {
                messages.append((identity, try Message.decode(frames)))
            } catch let error as ProtocolError where error.isVersionMismatch {
                droppedFrames += 1
                if versionLog.admit(now: now) { logger.warning("dropped a frame from \(hex(identity)): \(error)") }
            } catch {
                dropped("dropped a frame from \(hex(identity)): \(error)", now: now)
            }
        }
        try store.write { tx in
            for (identity, message) in messages {
                try handle(message, from: identity, tx: tx, now: now)
            }
            try expire(tx: tx, now: now)
            try dispatch(tx: tx, now: now)
        }
        if now >= nextHeartbeat {
            nextHeartbeat = now + spec.timeouts.heartbeatSeconds
            for identity in workers.keys { outgoing.append((identity, .heartbeat)) }
        }
        if let suppressed = dropLog.takeSuppressed(now: now) {
            logger.warning("dropped \(suppressed) more malformed or unexpected frames in the last \(Int(dropLog.interval))s")
        }
        if let suppressed = versionLog.takeSuppressed(now: now) {
            logger.warning("dropped \(suppressed) more frames of another protocol version in the last \(Int(versionLog.interval))s")
        }
        defer { outgoing.removeAll(keepingCapacity: true) }
        return outgoing
    }

    private func reply(_ identity: Data, _ message: Message) { outgoing.append((identity, message)) }

    private func dropped(_ warning: @autoclosure () -> String, now: Double) {
        droppedFrames += 1
        if dropLog.admit(now: now) { logger.warning("\(warning())") }
    }

    private func handle(_ message: Message, from identity: Data, tx: StoreTransaction, now: Double) throws {
        if case .hello(let hello) = message {
            try welcome(hello, identity: identity, tx: tx, now: now)
            return
        }
        guard workers[identity] != nil else {
            // A connection from before a restart, or of a worker presumed dead. Nothing it sends
            // counts, chunks included; every message is answered, and the worker says hello
            // again (at most once a second) and repeats what it has not had acknowledged.
            reply(identity, .rehello)
            return
        }
        workers[identity]!.lastSeen = now
        switch message {
        case .heartbeat: break
        case .request(let count):
            // Standing requests add up, never beyond the slots the worker has free.
            let worker = workers[identity]!
            let free = max(0, max(worker.slots, 1) - worker.leases.count)
            workers[identity]!.wanted = min(worker.wanted + max(0, min(count, CoordinatorTiming.maxRequest)), free)
        case .progress(let report):
            try tx.recordProgress(report.lease, step: report.step, total: report.total, loss: report.loss, now: now)
        case .result(let report):
            switch try tx.recordResult(report.lease, outputs: report.outputs, summary: report.summary, now: now) {
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
            let outcome = try tx.recordFailure(report.lease, error: report.error, logTail: report.logTail,
                                               permanent: report.permanent, retries: spec.retries, now: now)
            if outcome != .stale { logger.warning("\(report.lease) failed: \(report.error)") }
            workers[identity]!.leases[report.lease] = nil
            reply(identity, .ack(report.lease))
        case .checkpoint(let report):
            switch try tx.recordCheckpoint(report.lease, hash: report.hash, step: report.step, now: now) {
            case .recorded, .stale: reply(identity, .ack(report.lease))
            case .missingArtifacts(let hashes): reply(identity, .missing(report.lease, hashes))
            }
        case .put(let header, let data): try receiveChunk(header, data, from: identity, tx: tx, now: now)
        case .get(let request): try sendChunk(request, to: identity, tx: tx)
        case .hello, .welcome, .leases, .ack, .cancel, .chunk, .missing, .rehello, .refused:
            dropped("dropped a \(message.name) message, which workers do not send", now: now)
        }
    }

    private func welcome(_ hello: Hello, identity: Data, tx: StoreTransaction, now: Double) throws {
        var state = WorkerState(name: hello.worker, incarnation: hello.incarnation, slots: hello.slots, lastSeen: now)
        // A repeated hello of the same process on the same connection keeps the leases sent since
        // the first one. Another process on that routing identity inherits nothing.
        if let existing = workers[identity], existing.incarnation == hello.incarnation { state.leases = existing.leases }
        for key in hello.running {
            if try tx.adoptLease(key, owner: hello.worker, now: now) {
                orphanLeases[key] = nil
                for other in workers.keys { workers[other]!.leases[key] = nil }
                state.leases[key] = state.leases[key] ?? now
            } else {
                reply(identity, .cancel(key))
            }
        }
        // Whatever a replaced connection held and this hello does not name was lost in between:
        // the same process on an earlier connection, or an earlier process on this one.
        for (other, previous) in workers
        where (previous.incarnation == hello.incarnation && other != identity)
            || (other == identity && previous.incarnation != hello.incarnation) {
            let reason = other == identity ? "worker \(previous.name) restarted" : "worker \(hello.worker) reconnected without it"
            for key in previous.leases.keys where state.leases[key] == nil {
                _ = try tx.recordFailure(key, error: reason, logTail: nil, retries: spec.retries, now: now)
            }
            dropUploads(of: other)
            workers[other] = nil
        }
        workers[identity] = state
        try tx.log(nil, "worker_joined", "\(hello.worker) with \(hello.slots) slots", now: now)
        logger.info("worker \(hello.worker) joined with \(hello.slots) slots")
        reply(identity, .welcome(Welcome(heartbeatSeconds: spec.timeouts.heartbeatSeconds,
                                         workerDeadSeconds: workerDeadSeconds)))
    }

    /// Time in which this process did not run is nobody's silence: after a stall (the machine
    /// was suspended, the process stopped) every worker and orphaned lease gets that time back,
    /// so a frozen machine does not cost its running shards an attempt.
    private func forgiveStall(now: Double) {
        let stall = turns.stall(now: now, deadSeconds: workerDeadSeconds)
        guard stall > 0 else { return }
        for identity in workers.keys { workers[identity]!.lastSeen += stall }
        for key in orphanLeases.keys { orphanLeases[key]! += stall }
        logger.warning("this coordinator did not run for \(String(format: "%.1f", stall))s; its workers get that time back")
    }

    private func expire(tx: StoreTransaction, now: Double) throws {
        for (identity, worker) in workers where now - worker.lastSeen > workerDeadSeconds {
            logger.warning("worker \(worker.name) is silent for \(workerDeadSeconds)s: presumed dead")
            try tx.log(nil, "worker_lost", worker.name, now: now)
            for key in worker.leases.keys {
                _ = try tx.recordFailure(key, error: "worker \(worker.name) stopped answering", logTail: nil,
                                         retries: spec.retries, now: now)
            }
            dropUploads(of: identity)
            workers[identity] = nil
        }
        for (key, deadline) in orphanLeases where now > deadline {
            orphanLeases[key] = nil
            if workers.values.contains(where: { $0.leases[key] != nil }) { continue }
            _ = try tx.releaseInterrupted(key, reason: "no worker reclaimed this lease after the coordinator restarted",
                                          now: now)
        }
        // Any lease that no connected worker holds (lost in a reconnect, or of an
        // earlier process) is given one worker-dead period of grace, then goes back.
        if now >= nextLeaseAudit {
            nextLeaseAudit = now + workerDeadSeconds
            let held = Set(workers.values.flatMap { $0.leases.keys })
            for active in try tx.activeLeases() where !held.contains(active.lease) && orphanLeases[active.lease] == nil {
                orphanLeases[active.lease] = now + workerDeadSeconds
            }
        }
        for (hash, upload) in uploads where now - upload.lastChunk > CoordinatorTiming.uploadIdlePeriods * workerDeadSeconds {
            logger.info("abandoned the upload of \(hash) after \(upload.received) bytes: no chunk for \(workerDeadSeconds)s")
            discardUpload(hash)
        }
        if spec.timeouts.shardSeconds > 0 {
            for (identity, worker) in workers {
                for (key, started) in worker.leases where now - started > spec.timeouts.shardSeconds {
                    _ = try tx.recordFailure(key, error: "timed out after \(spec.timeouts.shardSeconds)s", logTail: nil,
                                             retries: spec.retries, now: now)
                    workers[identity]!.leases[key] = nil
                    reply(identity, .cancel(key))
                }
            }
        }
    }

    private func dispatch(tx: StoreTransaction, now: Double) throws {
        for (identity, worker) in workers where worker.wanted > 0 {
            let leases = try tx.lease(owner: worker.name, count: worker.wanted, now: now, expiry: now + workerDeadSeconds)
            if leases.isEmpty { return }
            // The rest of the request stands: the worker lends those slots' threads to its running
            // shards until shards become ready for them.
            workers[identity]!.wanted -= leases.count
            for lease in leases { workers[identity]!.leases[lease.key] = now }
            reply(identity, .leases(leases))
        }
    }

    // MARK: artifacts

    /// Appends an uploaded chunk; the last one is checked against its hash and registered.
    private func receiveChunk(_ header: ChunkHeader, _ data: Data, from identity: Data, tx: StoreTransaction, now: Double) throws {
        guard isArtifactHash(header.hash) else {
            dropped("dropped a chunk with a malformed hash", now: now)
            return
        }
        if try tx.hasArtifact(header.hash) { return }
        if header.offset == 0 {
            if uploads[header.hash] == nil,
               uploads.values.filter({ $0.owner == identity }).count >= CoordinatorTiming.maxUploadsPerWorker {
                dropped("dropped the upload of \(header.hash): \(CoordinatorTiming.maxUploadsPerWorker) uploads of that worker are in progress", now: now)
                return
            }
            discardUpload(header.hash)
            uploads[header.hash] = Upload(owner: identity, partial: try artifacts.partialFile(for: header.hash, tag: "upload"),
                                          received: 0, lastChunk: now)
        }
        // Chunks arrive in order on one connection; a gap means an upload was
        // interrupted, and the worker starts over when told the artifact is missing.
        guard var upload = uploads[header.hash], upload.owner == identity, upload.received == header.offset else { return }
        try artifacts.append(data, to: upload.partial)
        upload.received += data.count
        upload.lastChunk = now
        uploads[header.hash] = upload
        guard upload.received == header.size else { return }
        uploads[header.hash] = nil
        let actual = try artifacts.commit(upload.partial, as: header.hash)
        guard actual == header.hash else {
            logger.warning("upload of \(header.hash) arrived with hash \(actual); discarded")
            return
        }
        try tx.registerArtifact(hash: header.hash, size: header.size, kind: header.kind ?? "file", now: now)
    }

    private func discardUpload(_ hash: String) {
        guard let upload = uploads.removeValue(forKey: hash) else { return }
        try? FileManager.default.removeItem(at: upload.partial)
    }

    private func dropUploads(of identity: Data) {
        for (hash, upload) in uploads where upload.owner == identity { discardUpload(hash) }
    }

    private func sendChunk(_ request: ChunkRequest, to identity: Data, tx: StoreTransaction) throws {
        guard isArtifactHash(request.hash), let size = try tx.artifactSize(request.hash),
              let handle = try? FileHandle(forReadingFrom: artifacts.url(request.hash)) else {
            reply(identity, .refused("no artifact \(request.hash)"))
            return
        }
        defer { try? handle.close() }
        let offset = max(0, min(request.offset, size))
        do {
            try handle.seek(toOffset: UInt64(offset))
            let data = try handle.read(upToCount: max(1, min(request.length, WireProtocol.chunkSize))) ?? Data()
            reply(identity, .chunk(ChunkHeader(hash: request.hash, size: size, offset: offset, kind: nil), data))
        } catch {
            throw fileError("cannot read the artifact", artifacts.url(request.hash), error)
        }
    }
}

func hex(_ data: Data) -> String { data.prefix(16).map { String(format: "%02x", $0) }.joined() }
