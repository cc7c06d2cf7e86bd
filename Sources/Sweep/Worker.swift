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

/// Leases shards from a coordinator and runs each in a child process
/// (Paranoid Pirate worker: heartbeats both ways, reconnects with backoff).
public final class Worker {
    private let options: WorkerOptions
    private var logger: Logger
    private let context: Context
    private var socket: Socket?
    private var handshakeWatch: HandshakeWatch?
    private var generation = 0
    private var coordinatorLastSeen = 0.0
    private var nextHeartbeat = 0.0
    private var reconnectBackoff = 0.25
    private var heartbeatSeconds: Double
    private var coordinatorDeadSeconds: Double
    /// Leases asked for and not yet received.
    private var credit = 0
    private var lastHello = 0.0
    private var stopRequested = false
    private var lastBusy = Date().timeIntervalSince1970

    private final class Running {
        let lease: Lease
        let directory: URL
        var process: ChildProcess?
        var tail = LogTail()
        var lastProgressSent = 0.0
        var pendingProgress: ProgressReport?
        var cancelled = false
        init(lease: Lease, directory: URL) {
            self.lease = lease
            self.directory = directory
        }
    }

    private var waiting: [LeaseKey: Running] = [:]   // leased, fetching inputs
    private var running: [LeaseKey: Running] = [:]   // child process started
    /// Reports sent and not yet acknowledged, resent after a reconnect.
    private var unacknowledged: [LeaseKey: (message: Message, uploads: [String: String])] = [:]
    private var downloads: [String: Download] = [:]

    private struct Download {
        var size: Int
        var received: Int
        var lastChunk = Date().timeIntervalSince1970
        var handle: FileHandle
        var path: URL
    }

    public init(options: WorkerOptions, logger: Logger = Logger(label: "worker")) throws {
        self.options = options
        self.logger = logger
        heartbeatSeconds = options.heartbeatSeconds
        coordinatorDeadSeconds = options.coordinatorDeadSeconds
        context = try Context()
        for directory in [options.cacheDirectory, options.workDirectory, options.cacheDirectory.appendingPathComponent("incoming")] {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        }
    }

    public func stop() { stopRequested = true }

    public var activeShards: Int { waiting.count + running.count }

    /// Works until stopped (or idle for `idleExitSeconds`); kills its children on the way out.
    public func run() throws {
        let parent = getppid()
        try connect()
        defer {
            for shard in running.values { shard.process?.kill() }
            socket?.close()
        }
        while !stopRequested && !StopSignal.received {
            let timeout = running.isEmpty ? 100 : 20
            if let socket, try poll([socket], timeout: timeout)[0] {
                while let frames = try socket.receive(dontWait: true) {
                    coordinatorLastSeen = Date().timeIntervalSince1970
                    do {
                        try handle(try Message.decode(frames))
                    } catch let error as ProtocolError {
                        logger.warning("dropped a message from the coordinator: \(error)")
                    } catch {
                        logger.error("\(error)")
                    }
                }
            }
            watchChildren()
            let now = Date().timeIntervalSince1970
            if now - coordinatorLastSeen > coordinatorDeadSeconds {
                logger.warning("coordinator silent for \(coordinatorDeadSeconds)s; reconnecting in \(reconnectBackoff)s")
                handshakeWatch?.close()
                socket?.close()
                socket = nil
                Thread.sleep(forTimeInterval: reconnectBackoff)
                reconnectBackoff = min(reconnectBackoff * 2, 8)
                try connect()
                continue
            }
            handshakeWatch?.drain()
            if now >= nextHeartbeat {
                send(.heartbeat)
                nextHeartbeat = now + heartbeatSeconds
            }
            flushProgress(now: now)
            // A chunk request can be lost with a connection; ask again when a download stalls.
            for (hash, download) in downloads where now - download.lastChunk > coordinatorDeadSeconds {
                downloads[hash]!.lastChunk = now
                requestChunk(hash, offset: download.received)
            }
            requestWork()
            if activeShards > 0 || !unacknowledged.isEmpty { lastBusy = now }
            if let idle = options.idleExitSeconds, now - lastBusy > idle { break }
            if options.exitWithParent && getppid() != parent {
                logger.warning("the process that started this worker is gone; stopping")
                break
            }
        }
    }

    private func connect() throws {
        generation += 1
        let socket = try context.socket(.dealer)
        try socket.setLinger(0)
        try socket.setRoutingID(Array("\(options.name)/\(generation)".utf8))
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
        lastHello = Date().timeIntervalSince1970
        let mine = Set(waiting.keys).union(running.keys).union(unacknowledged.keys)
        send(.hello(Hello(worker: options.name, slots: options.slots, running: mine.sorted { $0.description < $1.description })))
        // A coordinator that restarted lost our chunk requests: ask again from where each download stands.
        for (hash, download) in downloads { requestChunk(hash, offset: download.received) }
    }

    private func send(_ message: Message) {
        guard let socket else { return }
        do {
            if try !socket.send(message.encoded(), dontWait: true) {
                logger.warning("send queue full; dropped a \(message.name) message")
            }
        } catch {
            logger.warning("send failed: \(error)")
        }
    }

    private func requestWork() {
        let free = options.slots - activeShards - credit
        if free > 0 {
            credit += free
            send(.request(free))
        }
    }

    private func handle(_ message: Message) throws {
        reconnectBackoff = 0.25
        switch message {
        case .welcome(let welcome):
            heartbeatSeconds = welcome.heartbeatSeconds
            coordinatorDeadSeconds = welcome.workerDeadSeconds
        case .heartbeat: break
        case .leases(let leases):
            credit = max(0, credit - leases.count)
            for lease in leases {
                do {
                    try accept(lease)
                } catch {
                    let key = LeaseKey(shard: lease.shard, attempt: lease.attempt)
                    waiting[key] = nil
                    report(key, .failure(FailureReport(lease: key, error: "worker \(options.name) could not take it: \(error)",
                                                       logTail: nil)), uploads: [:])
                }
            }
        case .ack(let key): unacknowledged[key] = nil
        case .cancel(let key): cancel(key)
        case .chunk(let header, let data): try receiveChunk(header, data)
        case .missing(let key, let hashes):
            guard let report = unacknowledged[key] else { return }
            for hash in hashes { upload(hash: hash, kind: report.uploads[hash] ?? "file") }
            send(report.message)
        case .rehello:
            // Answered once: the coordinator may ask again for every message it received before our hello.
            guard Date().timeIntervalSince1970 - lastHello >= 1 else { return }
            sayHello()
            for (key, report) in unacknowledged { resend(key, report) }
        case .refused(let reason):
            logger.error("coordinator refused: \(reason)")
            // A download the coordinator cannot serve fails the shards waiting for it.
            for hash in downloads.keys where reason.contains(hash) {
                if let download = downloads.removeValue(forKey: hash) { try? download.handle.close() }
                for (key, shard) in waiting where shard.lease.inputs.values.contains(where: { $0.hash == hash })
                    || shard.lease.resume?.hash == hash {
                    waiting[key] = nil
                    report(key, .failure(FailureReport(lease: key, error: "input artifact \(hash): \(reason)", logTail: nil)),
                           uploads: [:])
                }
            }
        case .hello, .request, .progress, .result, .failure, .checkpoint, .put, .get:
            logger.warning("dropped a \(message.name) message, which coordinators do not send")
        }
    }

    // MARK: shards

    private func accept(_ lease: Lease) throws {
        let key = LeaseKey(shard: lease.shard, attempt: lease.attempt)
        if ShardKinds.inProcess.contains(lease.kind) {
            report(key, .result(ResultReport(lease: key, outputs: [:], summary: "{}")), uploads: [:])
            return
        }
        let directory = options.workDirectory.appendingPathComponent(
            "\(lease.shard.replacingOccurrences(of: "/", with: "_"))-\(lease.attempt)")
        try? FileManager.default.removeItem(at: directory)
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("out"), withIntermediateDirectories: true)
        waiting[key] = Running(lease: lease, directory: directory)
        for artifact in Array(lease.inputs.values) + (lease.resume.map { [$0] } ?? []) {
            if !cached(artifact.hash), downloads[artifact.hash] == nil { try startDownload(artifact) }
        }
        try startReadyShards()
    }

    private func cachedURL(_ hash: String) -> URL { options.cacheDirectory.appendingPathComponent(hash) }
    private func cached(_ hash: String) -> Bool { FileManager.default.fileExists(atPath: cachedURL(hash).path) }

    private func startReadyShards() throws {
        for (key, shard) in waiting {
            let needed = Array(shard.lease.inputs.values) + (shard.lease.resume.map { [$0] } ?? [])
            guard needed.allSatisfy({ cached($0.hash) }) else { continue }
            waiting[key] = nil
            do {
                try start(shard)
                running[key] = shard
            } catch {
                report(key, .failure(FailureReport(lease: key, error: "could not start: \(error)", logTail: nil)), uploads: [:])
            }
        }
    }

    private func start(_ shard: Running) throws {
        let lease = shard.lease
        let key = LeaseKey(shard: lease.shard, attempt: lease.attempt)
        let job = ShardJob(shard: lease.shard, attempt: lease.attempt, kind: lease.kind, params: lease.params,
                           inputs: lease.inputs.mapValues { cachedURL($0.hash).path },
                           resume: lease.resume.map { cachedURL($0.hash).path }, resumeStep: lease.resumeStep,
                           outputDirectory: shard.directory.appendingPathComponent("out").path)
        let jobFile = shard.directory.appendingPathComponent("job.json")
        try JSONEncoder().encode(job).write(to: jobFile)
        let process = try ChildProcess(executable: options.executable, arguments: ["shard", "exec", jobFile.path],
                                       logFile: shard.directory.appendingPathComponent("log.txt"))
        shard.process = process
        logger.info("started \(key) (\(lease.kind)) as pid \(process.pid)")
    }

    /// Reads what each child wrote since the last look, and finishes the ones that exited.
    private func watchChildren() {
        for (key, shard) in running {
            guard let process = shard.process else { continue }
            let exit = process.poll()
            for line in process.newLines(final: exit != nil) {
                shard.tail.append(line)
                handleLine(line, shard: shard, key: key)
            }
            switch exit {
            case .exited(let status)?: finish(key, signalled: false, status: status)
            case .signalled(let signal)?: finish(key, signalled: true, status: signal)
            case nil: break
            }
        }
    }

    private func handleLine(_ line: String, shard: Running, key: LeaseKey) {
        let fields = line.split(separator: " ", maxSplits: 3).map(String.init)
        if fields.first == "@progress", fields.count == 4, let step = Int(fields[1]), let total = Int(fields[2]) {
            shard.pendingProgress = ProgressReport(lease: key, step: step, total: total, loss: Double(fields[3]))
        } else if fields.first == "@checkpoint", fields.count >= 3, let step = Int(fields[1]) {
            let path = line.split(separator: " ", maxSplits: 2).map(String.init)[2]
            do {
                let hash = try storeInCache(URL(fileURLWithPath: path))
                report(key, .checkpoint(CheckpointReport(lease: key, hash: hash, step: step)), uploads: [hash: "checkpoint"])
            } catch {
                logger.warning("\(key): could not keep checkpoint \(path): \(error)")
            }
        }
    }

    /// Progress goes up at most twice a second per shard.
    private func flushProgress(now: Double) {
        for shard in running.values {
            guard let progress = shard.pendingProgress, now - shard.lastProgressSent >= 0.5 else { continue }
            send(.progress(progress))
            shard.pendingProgress = nil
            shard.lastProgressSent = now
        }
    }

    private func finish(_ key: LeaseKey, signalled: Bool, status: Int32) {
        guard let shard = running.removeValue(forKey: key) else { return }
        if let progress = shard.pendingProgress { send(.progress(progress)) }
        if shard.cancelled {
            try? FileManager.default.removeItem(at: shard.directory)
            return
        }
        let tail = shard.tail.text
        guard !signalled && status == 0 else {
            let reason = signalled ? "shard process killed by signal \(status)\(status == SIGKILL ? " (crash or out of memory)" : "")"
                : "shard process exited with status \(status)"
            let lastLine = shard.tail.lastLine.map { ": \($0)" } ?? ""
            report(key, .failure(FailureReport(lease: key, error: reason + lastLine, logTail: tail)), uploads: [:])
            return
        }
        do {
            let resultURL = shard.directory.appendingPathComponent("out/\(ShardJob.resultFile)")
            let result = try JSONDecoder().decode(ShardResultFile.self, from: Data(contentsOf: resultURL))
            var outputs: [String: String] = [:]
            var uploads: [String: String] = [:]
            for (name, path) in result.outputs {
                let hash = try storeInCache(URL(fileURLWithPath: path))
                outputs[name] = hash
                uploads[hash] = name
            }
            report(key, .result(ResultReport(lease: key, outputs: outputs, summary: result.summary)), uploads: uploads)
            try? FileManager.default.removeItem(at: shard.directory)
        } catch {
            report(key, .failure(FailureReport(lease: key, error: "shard finished without a usable result: \(error)",
                                               logTail: tail)), uploads: [:])
        }
    }

    private func cancel(_ key: LeaseKey) {
        unacknowledged[key] = nil
        waiting[key] = nil
        if let shard = running[key] {
            shard.cancelled = true
            shard.process?.kill()
            logger.info("cancelled \(key): the coordinator gave it to another worker")
        }
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

    // MARK: artifacts

    /// Moves a file into the cache under its hash. Workers of one machine may
    /// share the cache, so files arrive there by an atomic rename.
    private func storeInCache(_ file: URL) throws -> String {
        let hash = try SHA256.hex(fileAt: file)
        let target = cachedURL(hash)
        if rename(file.path, target.path) != 0 {
            guard errno == EXDEV else {
                throw SweepError("cannot move \(file.path) into the cache: \(String(cString: strerror(errno)))")
            }
            // Another file system: copy next to the cache, then rename.
            let staging = options.cacheDirectory.appendingPathComponent("incoming/\(hash).\(getpid())")
            try? FileManager.default.removeItem(at: staging)
            try FileManager.default.copyItem(at: file, to: staging)
            guard rename(staging.path, target.path) == 0 else {
                throw SweepError("cannot move \(staging.path) into the cache: \(String(cString: strerror(errno)))")
            }
            try? FileManager.default.removeItem(at: file)
        }
        return hash
    }

    private func upload(hash: String, kind: String) {
        guard let handle = try? FileHandle(forReadingFrom: cachedURL(hash)) else {
            logger.error("artifact \(hash) is no longer in the cache")
            return
        }
        defer { try? handle.close() }
        let size = Int((try? handle.seekToEnd()) ?? 0)
        try? handle.seek(toOffset: 0)
        var offset = 0
        repeat {
            let data = (try? handle.read(upToCount: WireProtocol.chunkSize)) ?? Data()
            send(.put(ChunkHeader(hash: hash, size: size, offset: offset, kind: kind), data))
            offset += data.count
            if data.isEmpty { break }
        } while offset < size
    }

    private func startDownload(_ artifact: ArtifactRef) throws {
        let path = options.cacheDirectory.appendingPathComponent("incoming/\(artifact.hash).\(getpid())")
        _ = FileManager.default.createFile(atPath: path.path, contents: nil)
        downloads[artifact.hash] = Download(size: artifact.size, received: 0,
                                            handle: try FileHandle(forWritingTo: path), path: path)
        if artifact.size == 0 {
            try completeDownload(artifact.hash)
        } else {
            requestChunk(artifact.hash, offset: 0)
        }
    }

    private func requestChunk(_ hash: String, offset: Int) {
        send(.get(ChunkRequest(hash: hash, offset: offset, length: WireProtocol.chunkSize)))
    }

    private func receiveChunk(_ header: ChunkHeader, _ data: Data) throws {
        guard var download = downloads[header.hash], header.offset == download.received else { return }
        try download.handle.write(contentsOf: data)
        download.received += data.count
        download.lastChunk = Date().timeIntervalSince1970
        downloads[header.hash] = download
        if download.received >= download.size {
            try completeDownload(header.hash)
        } else {
            requestChunk(header.hash, offset: download.received)
        }
    }

    private func completeDownload(_ hash: String) throws {
        guard let download = downloads.removeValue(forKey: hash) else { return }
        try download.handle.close()
        let actual = try SHA256.hex(fileAt: download.path)
        guard actual == hash else {
            try? FileManager.default.removeItem(at: download.path)
            for (key, shard) in waiting where shard.lease.inputs.values.contains(where: { $0.hash == hash })
                || shard.lease.resume?.hash == hash {
                waiting[key] = nil
                report(key, .failure(FailureReport(lease: key, error: "artifact \(hash) arrived corrupt (hash \(actual))",
                                                   logTail: nil)), uploads: [:])
            }
            return
        }
        guard rename(download.path.path, cachedURL(hash).path) == 0 else {
            throw SweepError("cannot move \(download.path.path) into the cache: \(String(cString: strerror(errno)))")
        }
        try startReadyShards()
    }
}

extension Message {
    var isFinal: Bool {
        switch self {
        case .result, .failure: return true
        default: return false
        }
    }
}

/// The last lines of a shard's output, kept for its failure report.
struct LogTail {
    private var lines: [String] = []
    private let limit = 40

    mutating func append(_ line: String) {
        if line.hasPrefix("@progress ") || line.hasPrefix("@checkpoint ") { return }
        lines.append(line.count > 500 ? String(line.prefix(500)) + "…" : line)
        if lines.count > limit { lines.removeFirst(lines.count - limit) }
    }

    var text: String { lines.joined(separator: "\n") }
    var lastLine: String? { lines.last }
}
