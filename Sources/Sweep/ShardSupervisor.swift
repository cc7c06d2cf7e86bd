import Foundation

/// One leased shard on a worker: its working directory, its child process once its inputs are
/// in the cache, what the child reported, and how it ended.
final class SupervisedShard {
    let lease: Lease
    let directory: URL
    private(set) var process: ChildProcess?
    private var tail = LogTail()
    /// The latest progress not yet sent (progress is sent at most every `WorkerTiming.progressSeconds`).
    var pendingProgress: ProgressReport?
    var lastProgressSent = 0.0
    /// The coordinator took the lease back: the child is killed and nothing is reported.
    private(set) var cancelled = false
    /// When the child started, and the threads the worker allows it now (`ThreadLending`).
    private(set) var startedAt = 0.0
    private(set) var threads = 1

    init(lease: Lease, workDirectory: URL) throws {
        self.lease = lease
        directory = workDirectory.appendingPathComponent("\(lease.shard.replacingOccurrences(of: "/", with: "_"))-\(lease.attempt)")
        try? FileManager.default.removeItem(at: directory)
        do {
            try FileManager.default.createDirectory(at: outputDirectory, withIntermediateDirectories: true)
        } catch {
            throw fileError("cannot create the shard's directory", outputDirectory, error)
        }
    }

    var key: LeaseKey { lease.key }
    private var outputDirectory: URL { directory.appendingPathComponent("out") }
    /// The artifacts the child needs in the cache before it starts.
    var inputs: [ArtifactRef] { Array(lease.inputs.values) + (lease.resume.map { [$0] } ?? []) }
    func needs(_ hash: String) -> Bool { inputs.contains { $0.hash == hash } }

    private var threadsFile: URL { directory.appendingPathComponent(ThreadAllowance.fileName) }

    /// Writes the job file and starts `executable shard exec JOB` with `threads` threads.
    func start(executable: URL, cache: ArtifactStore, threads: Int) throws {
        try ThreadAllowance.write(threads, to: threadsFile)
        self.threads = threads
        let job = ShardJob(shard: lease.shard, attempt: lease.attempt, kind: lease.kind, params: lease.params,
                           inputs: lease.inputs.mapValues { cache.url($0.hash).path },
                           resume: lease.resume.map { cache.url($0.hash).path }, resumeStep: lease.resumeStep,
                           outputDirectory: outputDirectory.path, threads: threads, threadsFile: threadsFile.path)
        let jobFile = directory.appendingPathComponent("job.json")
        do {
            try JSONEncoder().encode(job).write(to: jobFile)
        } catch {
            throw fileError("cannot write the shard job", jobFile, error)
        }
        process = try ChildProcess(executable: executable, arguments: ["shard", "exec", jobFile.path],
                                   logFile: directory.appendingPathComponent("log.txt"))
        startedAt = Date().timeIntervalSince1970
    }

    /// Tells the running child it may use `threads` threads from its next step on.
    func allow(threads: Int) throws {
        guard threads != self.threads else { return }
        try ThreadAllowance.write(threads, to: threadsFile)
        self.threads = threads
    }

    /// Protocol lines written since the last look, and the child's exit once it has exited.
    func poll() -> (lines: [ChildLine], exit: ChildProcess.Exit?) {
        guard let process else { return ([], nil) }
        let exit = process.poll()
        var lines: [ChildLine] = []
        for text in process.newLines(final: exit != nil) {
            if let line = ChildLine.parse(text) {
                lines.append(line)
            } else if !ChildLine.isProtocolLine(text) {
                tail.append(text)
            }
        }
        return (lines, exit)
    }

    func cancel() {
        cancelled = true
        process?.kill()
    }

    func kill() { process?.kill() }

    enum Outcome {
        case succeeded(outputs: [String: URL], summary: String)
        case failed(error: String, logTail: String, permanent: Bool)
    }

    /// What the child's exit means: its result file, or a failure that says whether a retry can help.
    func outcome(of exit: ChildProcess.Exit) -> Outcome {
        let lastLine = tail.lastLine.map { ": \($0)" } ?? ""
        switch exit {
        case .signalled(let signal):
            // Killed (a crash, an out-of-memory kill, an operator): another attempt may succeed.
            let why = signal == SIGKILL ? " (crash or out of memory)" : ""
            return .failed(error: "shard process killed by signal \(signal)\(why)\(lastLine)", logTail: tail.text, permanent: false)
        case .exited(let status) where status != ShardExitStatus.succeeded:
            let permanent = status == ShardExitStatus.failedPermanently
            return .failed(error: "shard process exited with status \(status)\(permanent ? " (not retried)" : "")\(lastLine)",
                           logTail: tail.text, permanent: permanent)
        case .exited:
            let resultURL = outputDirectory.appendingPathComponent(ShardJob.resultFile)
            do {
                let result = try JSONDecoder().decode(ShardResultFile.self, from: Data(contentsOf: resultURL))
                return .succeeded(outputs: result.outputs.mapValues { URL(fileURLWithPath: $0) }, summary: result.summary)
            } catch {
                return .failed(error: "shard finished without a usable result \(resultURL.path): \(error)",
                               logTail: tail.text, permanent: false)
            }
        }
    }

    func removeDirectory() { try? FileManager.default.removeItem(at: directory) }
}

/// The last lines of a shard's output, kept for its failure report.
struct LogTail {
    private var lines: [String] = []
    private let limit = 40

    mutating func append(_ line: String) {
        lines.append(line.count > 500 ? String(line.prefix(500)) + "…" : line)
        if lines.count > limit { lines.removeFirst(lines.count - limit) }
    }

    var text: String { lines.joined(separator: "\n") }
    var lastLine: String? { lines.last }
}
