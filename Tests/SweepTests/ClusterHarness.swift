import Foundation
import XCTest
@testable import Sweep
import ZeroMQ

/// Runs coordinator and workers as processes of the built `circuitry` binary, each
/// optionally inside a network namespace, with their logs in the test's directory.
class ClusterTestCase: XCTestCase {
    var directory: URL!
    /// Every process a test started; all are killed in tearDown.
    var processes: [Process] = []

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("sweep-cluster-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        stopProcesses()
        // The run is not stopped yet, so hasSucceeded would be false: count the failures instead.
        if testRun?.totalFailureCount == 0 { try? FileManager.default.removeItem(at: directory) }
    }

    func stopProcesses() {
        for process in processes where process.isRunning {
            kill(process.processIdentifier, SIGCONT)
            kill(process.processIdentifier, SIGKILL)
        }
        for process in processes { process.waitUntilExit() }
        processes.removeAll()
    }

    var binary: URL {
        let besideTests = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [besideTests, besideTests.deletingLastPathComponent()] {
            let url = candidate.appendingPathComponent("circuitry")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/circuitry")
    }

    var runDirectory: URL { directory.appendingPathComponent("run") }

    /// Starts `circuitry ARGUMENTS`, inside `namespace` when given; output goes to NAME.log.
    @discardableResult
    func spawn(_ name: String, _ arguments: [String], namespace: String? = nil) throws -> Process {
        let process = Process()
        if let namespace {
            // exec keeps the pid, so signals reach circuitry itself.
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["ip", "netns", "exec", namespace, binary.path] + arguments
        } else {
            process.executableURL = binary
            process.arguments = arguments
        }
        let handle = try FileHandle(forWritingTo: logFile(name, create: true))
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        processes.append(process)
        return process
    }

    func logFile(_ name: String, create: Bool = false) -> URL {
        let url = directory.appendingPathComponent("\(name).log")
        if create && !FileManager.default.fileExists(atPath: url.path) {
            _ = FileManager.default.createFile(atPath: url.path, contents: nil)
        }
        return url
    }

    func log(_ name: String) -> String { (try? String(contentsOf: logFile(name), encoding: .utf8)) ?? "" }

    func workerArguments(_ name: String, connect: String, slots: Int = 1) -> [String] {
        ["worker", "--connect", connect, "--slots", "\(slots)", "--name", name,
         "--cache", directory.appendingPathComponent("cache-\(name)").path,
         "--work-dir", directory.appendingPathComponent("work-\(name)").path]
    }

    func freePort() throws -> Int {
        let context = try Context()
        let socket = try context.socket(.router)
        try socket.setLinger(0)
        try socket.bind("tcp://127.0.0.1:*")
        let endpoint = try socket.lastEndpoint
        socket.close()
        return Int(endpoint.split(separator: ":").last!)!
    }

    /// A sweep of simulated shards: one data shard, one train shard, one prune shard per task.
    func sweepFile(steps: Int = 10, stepSeconds: Double = 0.05, tasks: [String] = ["var_swap"],
                   densities: String = "[1.0]", heartbeatSeconds: Double = 0.3, workerDeadSeconds: Double = 1.5,
                   simulateExtra: String = "") throws -> URL {
        let url = directory.appendingPathComponent("sweep.yaml")
        try """
            name: test
            grid:
              density: \(densities)
              d_model: [64]
              task: [\(tasks.joined(separator: ", "))]
            train:
              checkpoint_every: 0.2
            controls:
              random_init: false    # the machinery tests count the grid's shards alone
            retries:
              max_attempts: 4
              backoff_seconds: 0.2
              backoff_max_seconds: 1
            timeouts:
              heartbeat_seconds: \(heartbeatSeconds)
              worker_dead_seconds: \(workerDeadSeconds)
            simulate:
              steps: \(steps)
              step_seconds: \(stepSeconds)
            \(simulateExtra)
            """.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// Key pairs NAME.key/NAME.pub made by `circuitry keygen`, as a real user would.
    func keygen(_ names: [String]) throws -> URL {
        let keys = directory.appendingPathComponent("keys")
        for name in names {
            let process = try spawn("keygen", ["keygen", "--out", keys.path, "--name", name])
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0, log("keygen"))
        }
        return keys
    }

    func snapshot() -> StatusReport.Snapshot? { try? StatusReport.snapshot(runDirectory: runDirectory) }
    func finished() -> Bool { snapshot()?.finished ?? false }
    func store() throws -> Store { try RunDirectory(runDirectory).openStore(readOnly: true) }

    func events() throws -> [(at: Double, shard: String?, event: String, detail: String?)] {
        try store().read { try $0.events(limit: 100_000) }.reversed()
    }

    func waitUntil(_ what: String, timeout: Double = 60, _ condition: () -> Bool) {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        XCTFail("timed out waiting until \(what); logs in \(directory.path)")
    }

    /// `circuitry status RUN_DIR --json`, as an operator would read it.
    func statusJSON() throws -> [String: Any] {
        let status = Process()
        status.executableURL = binary
        status.arguments = ["status", runDirectory.path, "--json"]
        let pipe = Pipe()
        status.standardOutput = pipe
        try status.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        status.waitUntilExit()
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: output) as? [String: Any])
    }
}

/// A new sweep store in `directory`, as `RunDirectory.create` makes it.
func newStore(_ directory: URL) throws -> Store {
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    return try Store(url: RunDirectory(directory).store, mode: .create)
}
