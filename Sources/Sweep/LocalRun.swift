import Foundation
import Logging

/// The running binary, for spawning workers and shard processes.
public func currentExecutable() -> URL {
    if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
        return URL(fileURLWithPath: path)
    }
    return URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
}

/// Set by SIGINT/SIGTERM; loops that own children check it and clean up.
public enum StopSignal {
    nonisolated(unsafe) private static var flag: sig_atomic_t = 0

    public static func install() {
        signal(SIGINT) { _ in StopSignal.flag = 1 }
        signal(SIGTERM) { _ in StopSignal.flag = 1 }
    }

    public static var received: Bool { flag != 0 }
}

/// The names of the workers that `circuitry run` and `circuitry resume` start. Such a worker
/// exits with its coordinator and knows only that process's endpoint (a random port), so a
/// later coordinator can release its leases at once instead of waiting for a reclaim.
public enum LocalWorkerName {
    public static let prefix = "local-"

    static func make(index: Int) -> String {
        "\(prefix)\(ProcessInfo.processInfo.processIdentifier)-\(index)-\(UInt32.random(in: 0...UInt32.max))"
    }
}

/// `circuitry run` and `circuitry resume`: a coordinator in this process plus
/// local worker processes, with a live progress display.
public final class LocalSweep {
    public struct Options {
        public var runDirectory: URL
        /// Worker processes, each with `slotsPerWorker` slots. One worker with a slot per core
        /// lets a lone shard have every core's thread.
        public var workers = 1
        public var slotsPerWorker: Int
        public var bind = "tcp://127.0.0.1:*"
        public var executable = currentExecutable()
        /// Redraw the display in place (a terminal) or print a line per change.
        public var interactive = isatty(STDOUT_FILENO) != 0
        public var output: (String) -> Void = { print($0); fflush(stdout) }

        public init(runDirectory: URL, slots: Int) {
            self.runDirectory = runDirectory
            slotsPerWorker = slots
        }
    }

    private let options: Options
    private var workerProcesses: [Process] = []

    private var directory: RunDirectory { RunDirectory(options.runDirectory) }

    public init(options: Options) { self.options = options }

    /// Runs until every shard is done or failed; returns the final counts.
    public func run() throws -> StateCounts {
        var logger = Logger(label: "coordinator")
        logger.logLevel = .error
        let coordinator = try Coordinator(runDirectory: options.runDirectory, bind: options.bind, logger: logger)
        defer { stopWorkers() }
        let started = Date().timeIntervalSince1970
        var remainingTime = RemainingTime()
        var eta: RemainingTime.Estimate?
        var nextEstimate = 0.0
        var nextDisplay = 0.0
        var lastCounts: StateCounts?
        var nextLogLine = 0.0
        while !StopSignal.received {
            try coordinator.step(timeout: 100)
            let now = Date().timeIntervalSince1970
            guard now >= nextDisplay else { continue }
            nextDisplay = now + 1
            keepWorkersRunning(endpoint: coordinator.endpoint)
            let counts = try coordinator.store.read { try $0.counts() }
            let running = try coordinator.store.read { try $0.shards(states: [.leased]) }
            if now >= nextEstimate {
                // Every shard's history is read, so not on every redraw.
                nextEstimate = now + 5
                let (shards, busy, attemptTimes) = try coordinator.store.read {
                    (try $0.shardProgress(), try $0.busySeconds(), try $0.latestAttemptTimes())
                }
                eta = remainingTime.estimate(shards: shards, busySeconds: busy, started: attemptTimes.mapValues(\.startedAt),
                                             slots: options.workers * options.slotsPerWorker, now: now)
            }
            let display = render(counts: counts, running: running, elapsed: now - started, eta: eta)
            if options.interactive {
                options.output("\u{1B}[H\u{1B}[2J" + display)
            } else if counts != lastCounts || now >= nextLogLine {
                // A log gets a line when a shard changes state, and every half minute otherwise.
                lastCounts = counts
                nextLogLine = now + 30
                options.output(String(display.split(separator: "\n").first ?? ""))
            }
            if counts.finished { return counts }
        }
        throw SweepError("stopped by a signal; continue with `circuitry resume \(options.runDirectory.path)`")
    }

    private func render(counts: StateCounts, running: [ShardStatus], elapsed: Double, eta: RemainingTime.Estimate?) -> String {
        let etaText = eta.map { ($0.isLowerBound ? "over " : "") + formatDuration($0.seconds) } ?? "-"
        var lines = ["\(counts.done)/\(counts.total) done, \(counts.failed) failed, \(counts.leased) running, "
            + "\(counts.pending) pending; elapsed \(formatDuration(elapsed)), ETA \(etaText)"]
        for shard in running {
            let step = shard.step.map { "step \($0)/\(shard.totalSteps ?? 0)" } ?? "starting"
            let loss = shard.loss.map { String(format: " loss %.4f", $0) } ?? ""
            lines.append("  \(shard.id): \(step)\(loss)")
        }
        return lines.joined(separator: "\n")
    }

    /// Starts local workers, and replaces any that died.
    private func keepWorkersRunning(endpoint: String) {
        workerProcesses.removeAll { !$0.isRunning }
        while workerProcesses.count < options.workers {
            let process = Process()
            process.executableURL = options.executable
            let name = LocalWorkerName.make(index: workerProcesses.count)
            process.arguments = ["worker", "--connect", endpoint, "--slots", "\(options.slotsPerWorker)", "--name", name, "--exit-with-parent",
                                 "--cache", directory.workerCache.path,
                                 "--work-dir", directory.work.appendingPathComponent(name).path]
            let log = directory.logs.appendingPathComponent("\(name).log")
            try? FileManager.default.createDirectory(at: log.deletingLastPathComponent(), withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            process.standardOutput = try? FileHandle(forWritingTo: log)
            process.standardError = process.standardOutput
            do {
                try process.run()
                workerProcesses.append(process)
            } catch {
                options.output("could not start a local worker: \(error)")
                return
            }
        }
    }

    private func stopWorkers() {
        for process in workerProcesses where process.isRunning { process.terminate() }
        for process in workerProcesses { process.waitUntilExit() }
        workerProcesses.removeAll()
    }
}

func formatDuration(_ seconds: Double) -> String {
    let total = Int(seconds.rounded())
    return total >= 3600 ? String(format: "%dh%02dm", total / 3600, total % 3600 / 60)
        : String(format: "%dm%02ds", total / 60, total % 60)
}
