import Foundation
import Logging

/// `circuitry bench dispatch`: no-op shards through the whole path (lease,
/// heartbeats, result committed to the store) with local worker processes.
public enum DispatchBenchmark {
    public struct Result: Codable {
        public var benchmark = "dispatch"
        public var shards: Int
        public var workers: Int
        public var slotsPerWorker: Int
        public var seconds: Double
        public var shardsPerSecond: Double
        /// The coordinator's resident memory with every shard still pending.
        public var coordinatorRSSMiBPending: Double
        public var coordinatorRSSMiBPeak: Double
        public var droppedFrames: Int
        /// Whether the traffic went through CurveZMQ (encrypted, keys checked).
        public var curve = false

        enum CodingKeys: String, CodingKey {
            case benchmark, shards, workers, seconds
            case slotsPerWorker = "slots_per_worker"
            case shardsPerSecond = "shards_per_second"
            case coordinatorRSSMiBPending = "coordinator_rss_mib_pending"
            case coordinatorRSSMiBPeak = "coordinator_rss_mib_peak"
            case droppedFrames = "dropped_frames"
            case curve
        }
    }

    public static func run(shards: Int, workers: Int, slotsPerWorker: Int, curve: Bool = false,
                           executable: URL = currentExecutable(),
                           progress: (String) -> Void = { _ in }) throws -> Result {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("circuitry-bench-dispatch-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let spec = try SweepSpec.parse("""
            name: dispatch-bench
            grid: {density: [1.0], d_model: [64], task: [var_swap]}
            """, file: "dispatch benchmark")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let store = try Store(url: RunDirectory(directory).store, mode: .create)
        try store.write { tx in
            try tx.createSweep(spec, shards: [], now: 0)
            try tx.insertShards((0..<shards).map { ("noop/\($0)", ShardKindName.noop, "{}", []) },
                                maxAttempts: spec.retries.maxAttempts, now: 0)
        }
        var logger = Logger(label: "coordinator")
        logger.logLevel = .error
        // With CURVE, every worker shares one authorised key pair.
        let keys = directory.appendingPathComponent("keys")
        var security: CoordinatorSecurity?
        var workerKeyArguments: [String] = []
        if curve {
            let server = try CurveKeyFile.generate(name: "coordinator", to: keys)
            let worker = try CurveKeyFile.generate(name: "worker", to: keys)
            security = try CoordinatorSecurity(keyFile: server.secret, authorizedKeysFile: worker.public)
            workerKeyArguments = ["--key", worker.secret.path, "--server-key", server.public.path]
        }
        let coordinator = try Coordinator(runDirectory: directory, bind: "tcp://127.0.0.1:*", security: security, logger: logger)
        for _ in 0..<5 { try coordinator.step(timeout: 10) }
        let pendingRSS = residentMiB()
        progress("\(shards) pending shards; coordinator resident memory \(String(format: "%.1f", pendingRSS)) MiB")

        var processes: [Process] = []
        defer {
            for process in processes where process.isRunning { process.terminate() }
            for process in processes { process.waitUntilExit() }
        }
        for index in 0..<workers {
            let process = Process()
            process.executableURL = executable
            process.arguments = ["worker", "--connect", coordinator.endpoint, "--slots", "\(slotsPerWorker)",
                                 "--name", "bench-\(index)", "--idle-exit", "10", "--exit-with-parent",
                                 "--cache", directory.appendingPathComponent("cache").path,
                                 "--work-dir", directory.appendingPathComponent("work-\(index)").path] + workerKeyArguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            processes.append(process)
        }
        // Time from the moment every worker has joined, so process start-up is not counted.
        let joinDeadline = Date().addingTimeInterval(30)
        while coordinator.workerCount < workers {
            guard Date() < joinDeadline else { throw SweepError("only \(coordinator.workerCount) of \(workers) workers joined") }
            try coordinator.step(timeout: 10)
        }
        let startCount = coordinator.resultsRecorded
        let started = Date()
        var peakRSS = pendingRSS
        var nextReport = Date().addingTimeInterval(2)
        while coordinator.resultsRecorded < shards {
            for _ in 0..<50 { try coordinator.step(timeout: 5) }
            peakRSS = max(peakRSS, residentMiB())
            guard processes.contains(where: \.isRunning) else { throw SweepError("every benchmark worker exited") }
            if Date() >= nextReport {
                nextReport = Date().addingTimeInterval(2)
                progress("\(coordinator.resultsRecorded) of \(shards) shards done")
            }
        }
        let seconds = Date().timeIntervalSince(started)
        let completed = coordinator.resultsRecorded - startCount
        return Result(shards: shards, workers: workers, slotsPerWorker: slotsPerWorker, seconds: seconds,
                      shardsPerSecond: Double(completed) / seconds, coordinatorRSSMiBPending: pendingRSS,
                      coordinatorRSSMiBPeak: peakRSS, droppedFrames: coordinator.droppedFrames, curve: curve)
    }

    /// VmRSS of this process, from /proc.
    static func residentMiB() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kib = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
        return kib / 1024
    }
}
