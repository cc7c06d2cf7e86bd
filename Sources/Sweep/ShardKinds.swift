import Circuits
import Foundation
import PythonCode
import SparseGPT

/// What a child process is asked to run: written by the worker as JSON, read by
/// `circuitry shard exec`.
public struct ShardJob: Codable, Equatable {
    public var shard: String
    public var attempt: Int
    public var kind: String
    public var params: String
    /// Input name (`<dependency kind>.<output>`) to a file path.
    public var inputs: [String: String]
    public var resume: String?
    public var resumeStep: Int?
    public var outputDirectory: String
    /// Threads for the shard's own work (training and pruning products) when it starts.
    public var threads: Int = 1
    /// Where the worker writes the threads it allows later (`ThreadAllowance`); nil: `threads` throughout.
    public var threadsFile: String?

    static let resultFile = "result.json"
}

/// What a finished shard hands back: output files and a JSON summary.
public struct ShardOutput {
    public var outputs: [String: URL]
    public var summary: [String: Double]

    public init(outputs: [String: URL], summary: [String: Double]) {
        self.outputs = outputs
        self.summary = summary
    }
}

struct ShardResultFile: Codable {
    var outputs: [String: String]
    var summary: String
}

/// Everything a shard kind receives: its job, decoded parameters, input files,
/// the checkpoint to continue from, and callbacks for progress and checkpoints.
public struct ShardContext {
    public let job: ShardJob
    public let params: ShardParams
    public let inputs: [String: URL]
    public let resume: URL?
    public let resumeStep: Int?
    public let outputDirectory: URL
    let emit: (String) -> Void
    private let allowance: ThreadAllowance

    init(job: ShardJob, params: ShardParams, inputs: [String: URL], resume: URL?, resumeStep: Int?,
         outputDirectory: URL, emit: @escaping (String) -> Void) {
        self.job = job
        self.params = params
        self.inputs = inputs
        self.resume = resume
        self.resumeStep = resumeStep
        self.outputDirectory = outputDirectory
        self.emit = emit
        allowance = ThreadAllowance(path: job.threadsFile, initial: job.threads)
    }

    /// Threads the shard may use when it starts.
    public var threads: Int { max(1, job.threads) }

    /// Threads the shard may use now: its worker lends it the slots it has nothing else to run on,
    /// and takes them back. Asked between steps; the answer changes only the speed, never the results.
    public func currentThreads() -> Int { allowance.current() }

    /// Reports progress; the worker streams it to the coordinator.
    public func progress(step: Int, total: Int, loss: Double?) {
        emit(ChildLine.progress(step: step, total: total, loss: loss).text)
    }

    /// Offers an intermediate checkpoint file for upload; a later attempt receives it as `resume`.
    public func checkpoint(file: URL, step: Int) {
        emit(ChildLine.checkpoint(step: step, path: file.path).text)
    }

    public func input(_ name: String) throws -> URL {
        guard let url = inputs[name] else {
            throw SweepError("shard \(job.shard): input \(name) is missing (has: \(inputs.keys.sorted().joined(separator: ", ")))")
        }
        return url
    }
}

public typealias ShardFunction = (ShardContext) throws -> ShardOutput

/// The shard kinds a child process can run, by name.
public enum ShardKinds {
    private static let lock = NSLock()
    private static var registry: [String: ShardFunction] = [
        ShardKindName.prepare: ModelShards.prepare,
        ShardKindName.train: ModelShards.train,
        ShardKindName.prune: ModelShards.prune,
    ]

    /// Adds or replaces a kind.
    public static func register(_ name: String, _ function: @escaping ShardFunction) {
        lock.lock()
        registry[name] = function
        lock.unlock()
    }

    static func function(for name: String) -> ShardFunction? {
        lock.lock()
        defer { lock.unlock() }
        return registry[name]
    }

    /// Kinds so cheap that the worker runs them itself instead of in a child process.
    static let inProcess: Set<String> = [ShardKindName.noop]
}

/// The child side: runs one job and writes its result file. Progress and
/// checkpoint lines go to standard output for the worker to read.
public enum ShardRunner {
    /// Runs the job of `jobFile` and returns the process's exit status (`ShardExitStatus`); an
    /// error goes to standard error as the log's last line.
    public static func main(jobFile: URL) -> Int32 {
        do {
            try execute(jobFile: jobFile)
            return ShardExitStatus.succeeded
        } catch {
            FileHandle.standardError.write(Data("error: \(describe(error))\n".utf8))
            return isDeterministic(error) ? ShardExitStatus.failedPermanently : ShardExitStatus.failed
        }
    }

    /// Whether an error would recur on every attempt: wrong parameters or a configuration, tokenizer,
    /// corpus or task that cannot serve. Input/output and resource errors are not.
    static func isDeterministic(_ error: Error) -> Bool {
        switch error {
        case is PermanentShardError, is SweepFileError, is TaskError, is TokenizerError, is CorpusError: return true
        case let error as CircuitError:
            switch error {
            case .invalidPairs, .invalidSettings: return true
            case .shapeMismatch, .model: return false
            }
        case let error as SparseGPTError:
            if case .invalidConfig = error { return true }
            return false
        default: return false
        }
    }

    static func execute(jobFile: URL) throws {
        exitWhenOrphaned()
        let job: ShardJob
        do {
            job = try JSONDecoder().decode(ShardJob.self, from: Data(contentsOf: jobFile))
        } catch {
            throw SweepError("cannot read shard job \(jobFile.path): \(error)")
        }
        let output = try run(job) { line in
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
        let outputDirectory = URL(fileURLWithPath: job.outputDirectory)
        let result = ShardResultFile(outputs: output.outputs.mapValues(\.path), summary: encodeSummary(output.summary))
        try JSONEncoder().encode(result).write(to: outputDirectory.appendingPathComponent(ShardJob.resultFile))
    }

    /// A shard whose worker died is that worker's lost lease: stop instead of
    /// running on unobserved.
    private static func exitWhenOrphaned() {
        let parent = getppid()
        let thread = Thread {
            while true {
                Thread.sleep(forTimeInterval: 0.5)
                if getppid() != parent { _exit(ShardExitStatus.orphaned) }
            }
        }
        thread.start()
    }

    static func run(_ job: ShardJob, emit: @escaping (String) -> Void) throws -> ShardOutput {
        let params: ShardParams
        do {
            params = try ShardParams.decode(job.params)
        } catch {
            throw PermanentShardError("shard \(job.shard): malformed parameters: \(error)")
        }
        let context = ShardContext(job: job, params: params,
                                   inputs: job.inputs.mapValues { URL(fileURLWithPath: $0) },
                                   resume: job.resume.map { URL(fileURLWithPath: $0) }, resumeStep: job.resumeStep,
                                   outputDirectory: URL(fileURLWithPath: job.outputDirectory), emit: emit)
        try FileManager.default.createDirectory(at: context.outputDirectory, withIntermediateDirectories: true)
        if job.kind == ShardKindName.prune, let task = params.task, let errors = context.inputs[TaskErrorsFile.inputName],
           let reason = try TaskErrorsFile.load(errors)[task] {
            throw PermanentShardError("shard \(job.shard): task \(task) could not be prepared: \(reason)")
        }
        if params.simulate != nil { return try SimulatedShard.run(context) }
        guard let function = ShardKinds.function(for: job.kind) else {
            throw PermanentShardError("shard \(job.shard): unknown shard kind '\(job.kind)'")
        }
        return try function(context)
    }
}

/// The prepare shard's `task_errors` output: the tasks it could not make pairs for, with why.
/// Their prune shards fail at once with that message; the other tasks go on.
enum TaskErrorsFile {
    static let outputName = "task_errors"
    static let inputName = "prepare.task_errors"

    static func save(_ errors: [String: String], to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try encoder.encode(errors).write(to: url)
    }

    static func load(_ url: URL) throws -> [String: String] {
        do {
            return try JSONDecoder().decode([String: String].self, from: Data(contentsOf: url))
        } catch {
            throw SweepError("cannot read the task errors \(url.path): \(error)")
        }
    }
}

func encodeSummary(_ summary: [String: Double]) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return String(decoding: try! encoder.encode(summary), as: UTF8.self)
}

/// A timed stand-in for prepare, train and prune, used by sweep files with a
/// `simulate:` section: it sleeps through its steps, reports a falling loss,
/// writes its outputs, checkpoints and resumes like training, and can be told
/// to crash or fail. The final checkpoint depends only on the shard's
/// parameters, so a resumed run ends where an uninterrupted one would.
enum SimulatedShard {
    static func run(_ context: ShardContext) throws -> ShardOutput {
        let simulate = context.params.simulate!
        let job = context.job
        if simulate.alwaysFail.contains(job.shard) {
            throw SweepError("shard \(job.shard): failing as the sweep file's simulate.always_fail asks")
        }
        if simulate.failPermanently.contains(job.shard) {
            throw PermanentShardError("shard \(job.shard): an invalid configuration, as the sweep file's simulate.fail_permanently asks")
        }
        for (name, url) in context.inputs where !FileManager.default.fileExists(atPath: url.path) {
            throw SweepError("shard \(job.shard): input \(name) not found at \(url.path)")
        }
        let total = simulate.steps
        var step = 0
        var state = seed(job.shard)
        if let resume = context.resume {
            (step, state) = try readCheckpoint(resume, shard: job.shard)
        }
        let resumedFrom = step
        let every = job.kind == ShardKindName.train
            ? max(1, Int((context.params.train?.checkpointEvery ?? 0.1) * Double(total))) : 0
        let crashAt = simulate.crashFirstAttempt.contains(job.shard) && job.attempt == 1 ? total * 3 / 5 : -1
        var mostThreads = context.threads
        while step < total {
            Thread.sleep(forTimeInterval: simulate.stepSeconds)
            mostThreads = max(mostThreads, context.currentThreads())
            step += 1
            state = state &* 6364136223846793005 &+ 1442695040888963407
            context.progress(step: step, total: total, loss: loss(step: step, total: total))
            if step == crashAt {
                // Stands in for a crash or an out-of-memory kill of the shard's process.
                kill(getpid(), SIGKILL)
            }
            if every > 0, step % every == 0, step < total {
                let file = context.outputDirectory.appendingPathComponent("checkpoint-\(step)")
                try Data("\(job.shard) \(step) \(state)\n".utf8).write(to: file)
                context.checkpoint(file: file, step: step)
            }
        }
        let output = context.outputDirectory.appendingPathComponent(job.kind)
        var text = "\(job.shard) \(total) \(state)\n"
        for name in context.inputs.keys.sorted() {
            text += "\(name) \(try SHA256.hex(fileAt: context.inputs[name]!))\n"
        }
        let outputName: String
        var outputs: [String: URL] = [:]
        var summary: [String: Double] = ["steps": Double(total), "resumed_from_step": Double(resumedFrom),
                                         "most_threads": Double(mostThreads)]
        switch job.kind {
        case ShardKindName.prepare:
            outputName = "data"
            let errors = context.outputDirectory.appendingPathComponent(TaskErrorsFile.outputName)
            try TaskErrorsFile.save(Dictionary(uniqueKeysWithValues: simulate.unpreparableTasks.map {
                ($0, "simulated: the sweep file's simulate.unpreparable_tasks names it")
            }), to: errors)
            outputs[TaskErrorsFile.outputName] = errors
        case ShardKindName.train:
            outputName = "checkpoint"
            summary["pretrain_loss"] = loss(step: total, total: total) + simulatedSpread(context.params)
        default:
            // A frontier document in the pruner's shape, so reports read simulated sweeps too.
            outputName = "curve"
            let prune = context.params.prune ?? PruneSection()
            let base = Double(100 + state % 900)
            let points: [[String: Any]] = prune.targetLosses.sorted().map { target in
                let edges = Int(base * 0.15 / target)
                return ["target": target, "reachable": true, "reached_loss": target * 0.95,
                        "node_count": edges / 3 + 1, "edge_count": edges]
            }
            let document: [String: Any] = ["task": context.params.task ?? job.shard, "points": points,
                                           "simulated": true, "inputs": text]
            text = String(decoding: try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys]), as: UTF8.self)
            summary["edges"] = (base * 0.15 / prune.headlineTarget).rounded(.down)
        }
        try Data(text.utf8).write(to: output)
        outputs[outputName] = output
        return ShardOutput(outputs: outputs, summary: summary)
    }

    static func seed(_ shard: String) -> UInt64 {
        var hasher = SHA256()
        hasher.update(Array(shard.utf8))
        return hasher.finalize().prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    static func loss(step: Int, total: Int) -> Double { 1 + 4 * exp(-3 * Double(step) / Double(max(total, 1))) }

    private static func simulatedSpread(_ params: ShardParams) -> Double {
        guard let point = params.point else { return 0 }
        return 0.5 * (1 - point.density) + 16 / Double(point.dModel)
    }

    private static func readCheckpoint(_ url: URL, shard: String) throws -> (Int, UInt64) {
        let fields = (try String(contentsOf: url, encoding: .utf8)).split(separator: " ")
        guard fields.count == 3, String(fields[0]) == shard, let step = Int(fields[1]),
              let state = UInt64(fields[2].trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw SweepError("shard \(shard): checkpoint \(url.path) is corrupt")
        }
        return (step, state)
    }
}
