import Foundation
import Logging
import ZeroMQ

public struct WorkerOptions {
    public var connect: String
    public var slots: Int
    public var name: String
    /// Artifacts by hash, shared by the worker's shards and kept across runs.
    public var cacheDirectory: URL
    /// Per-attempt directories: job file, outputs, log.
    public var workDirectory: URL
    /// The `circuitry` binary that runs `shard exec` in a child process.
    public var executable: URL
    /// CURVE keys; required by a coordinator that listens beyond loopback.
    public var security: WorkerSecurity?
    /// Until the coordinator's welcome says otherwise.
    public var heartbeatSeconds: Double = 1
    public var coordinatorDeadSeconds: Double = 5
    /// Stop once this long without any lease (nil: run until stopped).
    public var idleExitSeconds: Double?
    /// Stop when the process that started this worker exits (local workers of `circuitry run`).
    public var exitWithParent = false

    public init(connect: String, slots: Int, name: String, cacheDirectory: URL, workDirectory: URL, executable: URL) {
        self.connect = connect
        self.slots = slots
        self.name = name
        self.cacheDirectory = cacheDirectory
        self.workDirectory = workDirectory
        self.executable = executable
    }
}

/// The worker's timing, named once (the coordinator's welcome sets the heartbeat and the time to
/// presume the coordinator dead).
enum WorkerTiming {
    /// Poll timeouts: short while children run, so their progress flows.
    static let idlePollMilliseconds = 100
    static let busyPollMilliseconds = 20
    /// Reconnect backoff after the coordinator falls silent: doubles from the first to the last.
    static let firstReconnectSeconds = 0.25
    static let lastReconnectSeconds = 8.0
    /// A shard's progress goes up at most this often.
    static let progressSeconds = 0.5
    /// A rehello is answered at most this often: the coordinator sends one for every message it
    /// received before our hello.
    static let rehelloSeconds = 1.0
    /// Slots asked for and not filled for this long are lent to the running shards (`ThreadLending`):
    /// the coordinator answers a request at once when it has shards to run.
    static let lendIdleAfterSeconds = 0.5
}

/// Leases shards from a coordinator and runs each in a child process
/// (Paranoid Pirate worker: heartbeats both ways, reconnects with backoff).
public final class Worker {
    private let options: WorkerOptions
    private let logger: Logger
    private let context: Context
    private let cache: ArtifactStore
    /// This process among all that ever used the name: a restarted worker inherits nothing.
    private let incarnation = String(UInt64.random(in: 0...UInt64.max), radix: 16)
    private var socket: Socket?
    private var handshakeWatch: HandshakeWatch?
    private var generation = 0
    private var coordinatorLastSeen = 0.0
    /// Time in which this process did not run (a suspended machine) is not the coordinator's silence.
    private var turns = TurnClock()
    /// When the coordinator fell silent: the time to connect again.
    private var reconnectAt: Double?
    private var nextHeartbeat = 0.0
    private var reconnectBackoff = WorkerTiming.firstReconnectSeconds
    private var heartbeatSeconds: Double
    private var coordinatorDeadSeconds: Double
    /// Slots asked for and not yet received, and since when some have been.
    private var credit = 0
    private var creditUnfilledSince: Double?
    private var lastHello = 0.0
    private var stopRequested = false
    private var lastBusy = Date().timeIntervalSince1970
    /// Warnings that a misbehaving peer or a full queue could repeat thousands of times a second.
    private var warningLog = LogThrottle(burst: CoordinatorTiming.dropLogBurst, interval: CoordinatorTiming.dropLogIntervalSeconds)

    private var waiting: [LeaseKey: SupervisedShard] = [:]   // leased, fetching inputs
    private var running: [LeaseKey: SupervisedShard] = [:]   // child process started
    /// Reports sent and not yet acknowledged, resent after a reconnect.
    private var unacknowledged: [LeaseKey: (message: Message, uploads: [String: String])] = [:]
    private var downloads: Downloads

    public init(options: WorkerOptions, logger: Logger = Logger(label: "worker")) throws {
        self.options = options
        self.logger = logger
        heartbeatSeconds = options.heartbeatSeconds
        coordinatorDeadSeconds = options.coordinatorDeadSeconds
        context = try Context()
        cache = try ArtifactStore(directory: options.cacheDirectory)
        downloads = Downloads(cache: cache)
        do {
            try FileManager.default.createDirectory(at: options.workDirectory, withIntermediateDirectories: true)
        } catch {
            throw fileError("cannot create the work directory", options.workDirectory, error)
        }
    }

    public func stop() { stopRequested = true }

    /// Shards leased and not finished: each holds one slot.
    public var activeShards: Int { waiting.count + running.count }

    /// Works until stopped (or idle for `idleExitSeconds`); kills its children on the way out.
    public func run() throws {
        let parent = getppid()
        try connect()
        defer {
            for shard in running.values { shard.kill() }
            handshakeWatch?.close()
            socket?.close()
        }
        while !stopRequested && !StopSignal.received {
            let timeout = running.isEmpty ? WorkerTiming.idlePollMilliseconds : WorkerTiming.busyPollMilliseconds
            if let socket, try poll([socket], timeout: timeout)[0] {
                while let frames = try socket.receive(dontWait: true) {
                    coordinatorLastSeen = Date().timeIntervalSince1970
                    do {
                        try handle(try Message.decode(frames))
                    } catch let error as ProtocolError {
                        warn("dropped a message from the coordinator: \(error)")
                    } catch {
                        logger.error("\(error)")
                    }
                }
            } else if socket == nil {
                // Waiting to reconnect: sleep in short turns, so a stop signal is seen at once.
                usleep(UInt32(timeout) * 1000)
            }
            watchChildren()
            let now = Date().timeIntervalSince1970
            coordinatorLastSeen += turns.stall(now: now, deadSeconds: coordinatorDeadSeconds)
            if activeShards > 0 || !unacknowledged.isEmpty { lastBusy = now }
            if let idle = options.idleExitSeconds, now - lastBusy > idle { break }
            if options.exitWithParent && getppid() != parent {
                logger.warning("the process that started this worker is gone; stopping")
                break
            }
            if let reconnectAt {
                if now >= reconnectAt { try connect() }
                continue
            }
            if now - coordinatorLastSeen > coordinatorDeadSeconds {
                logger.warning("coordinator silent for \(coordinatorDeadSeconds)s; reconnecting in \(reconnectBackoff)s")
                handshakeWatch?.close()
                handshakeWatch = nil
                socket?.close()
                socket = nil
                reconnectAt = now + reconnectBackoff
                reconnectBackoff = min(reconnectBackoff * 2, WorkerTiming.lastReconnectSeconds)
                continue
            }
            handshakeWatch?.drain()
            heartbeatIfDue()
            flushProgress(now: now)
            // A chunk request can be lost with a connection; ask again when a download stalls.
            for request in downloads.resumeRequests(stalledFor: coordinatorDeadSeconds, now: now) { send(.get(request)) }
            requestWork()
            lendIdleThreads(now: now)
        }
    }

    private func connect() throws {
        reconnectAt = nil
        generation += 1
        let socket = try context.socket(.dealer)
        try socket.setLinger(0)
        try socket.setRoutingID(Array("\(options.name)/\(incarnation)/\(generation)".utf8))
        try socket.setSendHighWaterMark(100_000)
        handshakeWatch = try Worker.secure(socket, security: options.security, endpoint: options.connect, logger: logger)
        try socket.connect(options.connect)
        self.socket = socket
        coordinatorLastSeen = Date().timeIntervalSince1970
        sayHello()
        for (key, report) in unacknowledged { resend(key, report) }
    }

    /// Introduces this worker with the leases it still holds; the coordinator starts its credit afresh.
    private func sayHello() {
        credit = 0
        creditUnfilledSince = nil
        lastHello = Date().timeIntervalSince1970
        let mine = Set(waiting.keys).union(running.keys).union(unacknowledged.keys)
        send(.hello(Hello(worker: options.name, incarnation: incarnation, slots: options.slots,
                          running: mine.sorted { $0.description < $1.description })))
        // A coordinator that restarted lost our chunk requests: ask again from where each download stands.
        for request in downloads.resumeRequests(now: lastHello) { send(.get(request)) }
    }

    /// Also called while a large file hashes (a wide model's checkpoint takes seconds), so that
    /// the coordinator does not take this worker for dead meanwhile.
    private func heartbeatIfDue() {
        let now = Date().timeIntervalSince1970
        guard reconnectAt == nil, now >= nextHeartbeat else { return }
        send(.heartbeat)
        nextHeartbeat = now + heartbeatSeconds
    }

    private func send(_ message: Message) {
        guard let socket else { return }
        do {
            if try !socket.send(message.encoded(), dontWait: true) {
                warn("send queue full; dropped a \(message.name) message")
            }
        } catch {
            warn("send failed: \(error)")
        }
    }

    private func warn(_ message: @autoclosure () -> String) {
        let now = Date().timeIntervalSince1970
        if warningLog.admit(now: now) { logger.warning("\(message())") }
        if let suppressed = warningLog.takeSuppressed(now: now) {
            logger.warning("\(suppressed) more such warnings in the last \(Int(warningLog.interval))s")
        }
    }

    private func requestWork() {
        let free = options.slots - activeShards - credit
        if free > 0 {
            credit += free
            if creditUnfilledSince == nil { creditUnfilledSince = Date().timeIntervalSince1970 }
            send(.request(free))
        }
    }

    /// Lends the slots the coordinator has had nothing for to the running shards, and takes them back
    /// once leases arrive, so that a lone shard (a sweep's widest model training) runs on every core.
    private func lendIdleThreads(now: Double) {
        let unfilled = creditUnfilledSince.map { now - $0 >= WorkerTiming.lendIdleAfterSeconds } ?? false
        let idle = unfilled ? min(credit, options.slots - activeShards) : 0
        let shards = running.values.map { ThreadLending.Shard(key: $0.key, kind: $0.lease.kind, startedAt: $0.startedAt) }
        for (key, threads) in ThreadLending.allocate(running: shards, idleSlots: idle) {
            guard let shard = running[key], shard.threads != threads else { continue }
            do {
                try shard.allow(threads: threads)
                logger.info("\(key): \(plural(threads, "thread")) (\(plural(idle, "idle slot")) lent)")
            } catch {
                warn("\(key): could not change its threads: \(error)")
            }
        }
    }

    private func handle(_ message: Message) throws {
        reconnectBackoff = WorkerTiming.firstReconnectSeconds
        switch message {
        case .welcome(let welcome):
            heartbeatSeconds = welcome.heartbeatSeconds
            coordinatorDeadSeconds = welcome.workerDeadSeconds
        case .heartbeat: break
        case .leases(let leases):
            credit = max(0, credit - leases.count)
            creditUnfilledSince = credit > 0 ? Date().timeIntervalSince1970 : nil
            for lease in leases {
                do {
                    try accept(lease)
                } catch {
                    waiting[lease.key] = nil
                    fail(lease.key, "worker \(options.name) could not take it: \(error)")
                }
            }
        case .ack(let key): unacknowledged[key] = nil
        case .cancel(let key): cancel(key)
        case .chunk(let header, let data):
            switch try downloads.receive(header, data, now: Date().timeIntervalSince1970) {
            case .ignored: break
            case .next(let request): send(.get(request))
            case .complete: try completeDownload(header.hash)
            }
        case .missing(let key, let hashes):
            guard let report = unacknowledged[key] else { return }
            for hash in hashes { upload(hash: hash, kind: report.uploads[hash] ?? "file") }
            send(report.message)
        case .rehello:
            guard Date().timeIntervalSince1970 - lastHello >= WorkerTiming.rehelloSeconds else { return }
            sayHello()
            for (key, report) in unacknowledged { resend(key, report) }
        case .refused(let reason):
            logger.error("coordinator refused: \(reason)")
            // A download the coordinator cannot serve fails the shards waiting for it.
            for hash in downloads.hashes where reason.contains(hash) {
                downloads.cancel(hash)
                for (key, shard) in waiting where shard.needs(hash) {
                    waiting[key] = nil
                    fail(key, "input artifact \(hash): \(reason)")
                }
            }
        case .hello, .request, .progress, .result, .failure, .checkpoint, .put, .get:
            warn("dropped a \(message.name) message, which coordinators do not send")
        }
    }

    // MARK: shards

    private func accept(_ lease: Lease) throws {
        if ShardKinds.inProcess.contains(lease.kind) {
            report(lease.key, .result(ResultReport(lease: lease.key, outputs: [:], summary: "{}")), uploads: [:])
            return
        }
        let shard = try SupervisedShard(lease: lease, workDirectory: options.workDirectory)
        waiting[lease.key] = shard
        for artifact in shard.inputs where !cache.contains(artifact.hash) && !downloads.contains(artifact.hash) {
            if let request = try downloads.start(artifact, now: Date().timeIntervalSince1970) {
                send(.get(request))
            } else {
                try completeDownload(artifact.hash)
            }
        }
        startReadyShards()
    }

    private func startReadyShards() {
        for (key, shard) in waiting where shard.inputs.allSatisfy({ cache.contains($0.hash) }) {
            waiting[key] = nil
            do {
                try shard.start(executable: options.executable, cache: cache, threads: 1)
                running[key] = shard
                logger.info("started \(key) (\(shard.lease.kind)) as pid \(shard.process?.pid ?? 0)")
            } catch {
                fail(key, "could not start: \(error)")
            }
        }
    }

    /// Reads what each child wrote since the last look, and finishes the ones that exited.
    private func watchChildren() {
        for (key, shard) in running {
            let (lines, exit) = shard.poll()
            for line in lines {
                switch line {
                case .progress(let step, let total, let loss):
                    shard.pendingProgress = ProgressReport(lease: key, step: step, total: total, loss: loss)
                case .checkpoint(let step, let path):
                    do {
                        let hash = try cache.adopt(URL(fileURLWithPath: path), whileHashing: heartbeatIfDue)
                        report(key, .checkpoint(CheckpointReport(lease: key, hash: hash, step: step)), uploads: [hash: "checkpoint"])
                    } catch {
                        logger.warning("\(key): could not keep checkpoint \(path): \(error)")
                    }
                }
            }
            if let exit { finish(shard, exit: exit) }
        }
    }

    /// Progress goes up at most every `WorkerTiming.progressSeconds` per shard.
    private func flushProgress(now: Double) {
        for shard in running.values {
            guard let progress = shard.pendingProgress, now - shard.lastProgressSent >= WorkerTiming.progressSeconds else { continue }
            send(.progress(progress))
            shard.pendingProgress = nil
            shard.lastProgressSent = now
        }
    }

    private func finish(_ shard: SupervisedShard, exit: ChildProcess.Exit) {
        let key = shard.key
        running[key] = nil
        if let progress = shard.pendingProgress { send(.progress(progress)) }
        if shard.cancelled {
            shard.removeDirectory()
            return
        }
        switch shard.outcome(of: exit) {
        case .failed(let error, let logTail, let permanent):
            report(key, .failure(FailureReport(lease: key, error: error, logTail: logTail, permanent: permanent)), uploads: [:])
        case .succeeded(let files, let summary):
            do {
                var outputs: [String: String] = [:]
                var uploads: [String: String] = [:]
                for (name, file) in files {
                    let hash = try cache.adopt(file, whileHashing: heartbeatIfDue)
                    outputs[name] = hash
                    uploads[hash] = name
                }
                report(key, .result(ResultReport(lease: key, outputs: outputs, summary: summary)), uploads: uploads)
                shard.removeDirectory()
            } catch {
                fail(key, "shard finished but its outputs could not be kept: \(error)")
            }
        }
    }

    private func cancel(_ key: LeaseKey) {
        unacknowledged[key] = nil
        waiting[key] = nil
        if let shard = running[key] {
            shard.cancel()
            logger.info("cancelled \(key): the coordinator gave it to another worker")
        }
    }

    private func fail(_ key: LeaseKey, _ error: String) {
        report(key, .failure(FailureReport(lease: key, error: error, logTail: nil)), uploads: [:])
    }

    private func report(_ key: LeaseKey, _ message: Message, uploads: [String: String]) {
        // A checkpoint report never replaces an unacknowledged final report.
        if case .checkpoint = message, let existing = unacknowledged[key], existing.message.isFinal { return }
        unacknowledged[key] = (message, uploads)
        resend(key, (message, uploads))
    }

    private func resend(_ key: LeaseKey, _ report: (message: Message, uploads: [String: String])) {
        for (hash, kind) in report.uploads { upload(hash: hash, kind: kind) }
        send(report.message)
    }

    private func upload(hash: String, kind: String) {
        do {
            try uploadChunks(of: hash, kind: kind, from: cache) { send($0) }
        } catch {
            logger.error("\(error)")
        }
    }

    private func completeDownload(_ hash: String) throws {
        guard let actual = try downloads.finish(hash, whileHashing: heartbeatIfDue) else { return }
        guard actual == hash else {
            for (key, shard) in waiting where shard.needs(hash) {
                waiting[key] = nil
                fail(key, "artifact \(hash) arrived corrupt (hash \(actual))")
            }
            return
        }
        startReadyShards()
    }
}

private func plural(_ count: Int, _ noun: String) -> String { "\(count) \(noun)\(count == 1 ? "" : "s")" }

extension Message {
    var isFinal: Bool {
        switch self {
        case .result, .failure: return true
        default: return false
        }
    }
}
