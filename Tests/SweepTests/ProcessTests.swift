import Foundation
import XCTest
@testable import Sweep
import ZeroMQ

/// Coordinator and workers as real processes of the built `circuitry` binary on loopback.
final class ProcessTests: ClusterTestCase {
    private func coordinator(_ sweep: URL?, port: Int, resume: Bool = false) throws -> Process {
        let endpoint = "tcp://127.0.0.1:\(port)"
        if resume {
            return try spawn("coordinator", ["coordinator", "--resume", runDirectory.path, "--bind", endpoint])
        }
        return try spawn("coordinator", ["coordinator", sweep!.path, "--bind", endpoint, "--run-dir", runDirectory.path])
    }

    @discardableResult
    private func worker(_ name: String, port: Int, slots: Int = 1) throws -> Process {
        try spawn(name, workerArguments(name, connect: "tcp://127.0.0.1:\(port)", slots: slots))
    }

    /// The loopback tests' sweep: two densities and two tasks unless told otherwise.
    private func loopbackSweep(steps: Int = 10, stepSeconds: Double = 0.05, tasks: [String] = ["var_swap", "if_equals"],
                               densities: String = "[1.0, 0.25]", extra: String = "") throws -> URL {
        try sweepFile(steps: steps, stepSeconds: stepSeconds, tasks: tasks, densities: densities,
                      heartbeatSeconds: 0.5, workerDeadSeconds: 3, simulateExtra: extra)
    }

    private func doneEvents() throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for event in try store().read({ try $0.events(limit: 100_000) }) where event.event == "done" {
            counts[event.shard!, default: 0] += 1
        }
        return counts
    }

    // MARK: tests

    func testSweepCompletesWithThreeWorkers() throws {
        let port = try freePort()
        let coordinator = try coordinator(try loopbackSweep(), port: port)
        for index in 0..<3 { try worker("w\(index)", port: port) }
        waitUntil("the sweep finished", finished)
        let snapshot = try XCTUnwrap(snapshot())
        XCTAssertEqual(snapshot.shards.count, 7)
        XCTAssertTrue(snapshot.shards.allSatisfy { $0.state == .done }, StatusReport.table(snapshot))
        XCTAssertEqual(try store().read { try $0.resultCount() }, 7)
        // Prune shards received their model's checkpoint through the artifact path.
        let checkpoint = try XCTUnwrap(try store().read { try $0.outputs(ofShard: "train/d1-w64-a1-s0") }["checkpoint"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: runDirectory.appendingPathComponent("artifacts/\(checkpoint)").path))
        let curve = try XCTUnwrap(try store().read { try $0.outputs(ofShard: "prune/d1-w64-a1-s0/var_swap") }["curve"])
        let curveText = try String(contentsOf: runDirectory.appendingPathComponent("artifacts/\(curve)"), encoding: .utf8)
        XCTAssertTrue(curveText.contains("train.checkpoint \(checkpoint)"), curveText)

        // The coordinator stops by itself once the sweep is finished; status --json from the binary.
        waitUntil("the coordinator exited", timeout: 10) { !coordinator.isRunning }
        let json = try statusJSON()
        XCTAssertEqual(json["finished"] as? Bool, true)
        XCTAssertEqual((json["shards"] as? [[String: Any]])?.count, 7)
    }

    func testShardOfAKilledWorkerFinishesElsewhereFromItsCheckpoint() throws {
        let port = try freePort()
        try coordinator(try loopbackSweep(steps: 30, stepSeconds: 0.1, tasks: ["var_swap"], densities: "[1.0]"), port: port)
        let workers = ["w0": try worker("w0", port: port), "w1": try worker("w1", port: port)]
        let train = "train/d1-w64-a1-s0"
        var owner: String?
        waitUntil("the train shard passed a checkpoint") {
            guard let shard = snapshot()?.shards.first(where: { $0.id == train }), shard.state == .leased,
                  (shard.step ?? 0) >= 14 else { return false }
            owner = shard.worker
            return true
        }
        let victim = try XCTUnwrap(workers[try XCTUnwrap(owner)])
        kill(victim.processIdentifier, SIGKILL)
        waitUntil("the sweep finished", finished)
        let shard = try XCTUnwrap(snapshot()?.shards.first { $0.id == train })
        XCTAssertEqual(shard.state, .done)
        XCTAssertGreaterThanOrEqual(shard.attempts, 2)
        let summary = try JSONSerialization.jsonObject(with: Data(shard.summary!.utf8)) as! [String: Double]
        XCTAssertGreaterThanOrEqual(summary["resumed_from_step"] ?? 0, 6, "continued from an uploaded checkpoint")
        // It ends where an uninterrupted run would: the simulation's final state depends only on the shard.
        let checkpoint = try XCTUnwrap(try store().read { try $0.outputs(ofShard: train) }["checkpoint"])
        let text = try String(contentsOf: runDirectory.appendingPathComponent("artifacts/\(checkpoint)"), encoding: .utf8)
        var state = SimulatedShard.seed(train)
        for _ in 0..<30 { state = state &* 6364136223846793005 &+ 1442695040888963407 }
        XCTAssertTrue(text.hasPrefix("\(train) 30 \(state)\n"), text)
        XCTAssertEqual(try doneEvents().values.max(), 1)
    }

    func testCoordinatorKilledMidSweepAndResumedLosesNothing() throws {
        let port = try freePort()
        let sweep = try loopbackSweep(steps: 12, stepSeconds: 0.1, tasks: ["var_swap", "if_equals", "bracket_brace"])
        let first = try coordinator(sweep, port: port)
        try worker("w0", port: port, slots: 2)
        try worker("w1", port: port, slots: 1)
        var doneBefore: [String: Int] = [:]
        waitUntil("some shards are done and some running") {
            guard let snapshot = snapshot(), snapshot.counts.done >= 2, snapshot.counts.leased >= 1 else { return false }
            doneBefore = Dictionary(uniqueKeysWithValues: snapshot.shards.filter { $0.state == .done }.map { ($0.id, $0.attempts) })
            return true
        }
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        // Whatever was committed before the kill is the reference.
        doneBefore = Dictionary(uniqueKeysWithValues: try XCTUnwrap(snapshot()).shards.filter { $0.state == .done }
            .map { ($0.id, $0.attempts) })
        Thread.sleep(forTimeInterval: 1)
        try coordinator(nil, port: port, resume: true)
        waitUntil("the resumed sweep finished", timeout: 90, finished)
        let after = try XCTUnwrap(snapshot())
        XCTAssertTrue(after.shards.allSatisfy { $0.state == .done }, StatusReport.table(after))
        for (id, attempts) in doneBefore {
            XCTAssertEqual(after.shards.first { $0.id == id }?.attempts, attempts, "\(id) was not run again")
        }
        XCTAssertEqual(try store().read { try $0.resultCount() }, after.shards.count)
        let done = try doneEvents()
        XCTAssertEqual(done.count, after.shards.count)
        XCTAssertTrue(done.values.allSatisfy { $0 == 1 }, "\(done)")
        // The workers reconnected by themselves and reclaimed what they were running.
        let events = try store().read { try $0.events(limit: 100_000) }
        XCTAssertEqual(events.filter { $0.event == "coordinator_started" }.count, 2)
        XCTAssertFalse(events.filter { $0.event == "lease_adopted" }.isEmpty, "\(events.map(\.event))")
    }

    func testStoppedWorkerLosesItsLease() throws {
        let port = try freePort()
        try coordinator(try loopbackSweep(steps: 20, stepSeconds: 0.1, tasks: ["var_swap"], densities: "[1.0]"), port: port)
        let workers = ["w0": try worker("w0", port: port), "w1": try worker("w1", port: port)]
        let train = "train/d1-w64-a1-s0"
        var owner: String?
        waitUntil("the train shard is running") {
            guard let shard = snapshot()?.shards.first(where: { $0.id == train }), shard.state == .leased,
                  (shard.step ?? 0) >= 2 else { return false }
            owner = shard.worker
            return true
        }
        let hung = try XCTUnwrap(workers[try XCTUnwrap(owner)])
        kill(hung.processIdentifier, SIGSTOP)
        waitUntil("the train shard finished elsewhere") {
            snapshot()?.shards.first { $0.id == train }?.state == .done
        }
        let attempts = try store().read { try $0.attempts(ofShard: train) }
        XCTAssertGreaterThanOrEqual(attempts.count, 2)
        XCTAssertTrue(attempts[0].error?.contains("stopped answering") ?? false, "\(attempts)")
        XCTAssertEqual(attempts.last?.outcome, "done")
        XCTAssertNotEqual(attempts.last?.worker, owner)
        // Woken up, the hung worker's late report is ignored and its shard cancelled.
        kill(hung.processIdentifier, SIGCONT)
        waitUntil("the sweep finished", finished)
        Thread.sleep(forTimeInterval: 1.5)
        XCTAssertEqual(try store().read { try $0.resultCount() }, 3)
        XCTAssertEqual(try doneEvents().values.max(), 1)
    }

    /// A suspended machine (a laptop's lid, a frozen VM) stops coordinator and worker together:
    /// neither may count that time as the other's silence.
    func testCoordinatorAndWorkerFrozenTogetherLoseNoAttempt() throws {
        let port = try freePort()
        let coordinatorProcess = try coordinator(try loopbackSweep(steps: 30, stepSeconds: 0.1, tasks: ["var_swap"], densities: "[1.0]"),
                                                 port: port)
        let workerProcess = try worker("w0", port: port)
        let train = "train/d1-w64-a1-s0"
        waitUntil("the train shard is running") {
            (snapshot()?.shards.first { $0.id == train }?.step ?? 0) >= 2
        }
        let frozen = [coordinatorProcess.processIdentifier, workerProcess.processIdentifier]
        for pid in frozen { kill(pid, SIGSTOP) }
        Thread.sleep(forTimeInterval: 4.5)  // longer than worker_dead_seconds (3)
        for pid in frozen { kill(pid, SIGCONT) }
        waitUntil("the sweep finished", finished)
        let events = try store().read { try $0.events(limit: 100_000) }.map(\.event)
        XCTAssertFalse(events.contains("worker_lost"), "\(events)")
        XCTAssertEqual(try store().read { try $0.attempts(ofShard: train) }.map(\.outcome), ["done"])
        XCTAssertEqual(try doneEvents().values.max(), 1)
    }

    private func runBinary(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        processes.append(process)
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    func testRunKeepsAFailureWithItsLogThenRetryPutsItBack() throws {
        let failing = "prune/d1-w64-a1-s0/if_equals"
        let sweep = try loopbackSweep(densities: "[1.0]", extra: "  always_fail: [\(failing)]")
        let run = try runBinary(["run", sweep.path, "--run-dir", runDirectory.path, "--slots", "2"])
        XCTAssertEqual(run.status, 1, run.output)
        XCTAssertTrue(run.output.contains("1 shards failed"), run.output)
        XCTAssertTrue(run.output.contains("Circuit edges at task loss"), run.output)
        XCTAssertTrue(run.output.contains("report: \(runDirectory.path)/report/index.html"), run.output)
        let shard = try XCTUnwrap(snapshot()?.shards.first { $0.id == failing })
        XCTAssertEqual(shard.state, .failed)
        XCTAssertEqual(shard.attempts, 4)
        XCTAssertTrue(shard.error?.contains("exited with status 2") ?? false, shard.error ?? "")
        XCTAssertTrue(shard.logTail?.contains("simulate.always_fail") ?? false, shard.logTail ?? "")
        XCTAssertEqual(snapshot()?.counts.done, 3)

        let retry = try runBinary(["retry", runDirectory.path, "--failed"])
        XCTAssertEqual(retry.status, 0, retry.output)
        let after = try XCTUnwrap(snapshot())
        XCTAssertFalse(after.finished)
        XCTAssertEqual(after.shards.first { $0.id == failing }?.state, .pending)
        XCTAssertEqual(after.counts.done, 3, "done shards stay done")
    }

    func testAShardOverItsTimeLimitIsCancelledAndFails() throws {
        let port = try freePort()
        let sweep = try loopbackSweep(steps: 100, stepSeconds: 0.1, tasks: ["var_swap"], densities: "[1.0]")
        var text = try String(contentsOf: sweep, encoding: .utf8)
        text = text.replacingOccurrences(of: "  worker_dead_seconds: 3.0", with: "  worker_dead_seconds: 3.0\n  shard_seconds: 1.5")
            .replacingOccurrences(of: "max_attempts: 4", with: "max_attempts: 2")
        try text.write(to: sweep, atomically: true, encoding: .utf8)
        try coordinator(sweep, port: port)
        try worker("w0", port: port)
        waitUntil("the sweep finished", finished)
        let shards = try XCTUnwrap(snapshot()).shards
        XCTAssertEqual(shards.first { $0.id == "prepare" }?.state, .failed)
        XCTAssertTrue(shards.first { $0.id == "prepare" }?.error?.contains("timed out after 1.5s") ?? false)
        XCTAssertTrue(shards.dropFirst().allSatisfy { $0.state == .failed && ($0.error ?? "").contains("prepare, failed") })
        // The worker killed the cancelled shard's process.
        waitUntil("no shard process is left", timeout: 10) {
            let work = directory.appendingPathComponent("work-w0")
            return ((try? FileManager.default.contentsOfDirectory(atPath: work.path)) ?? []).isEmpty
        }
    }

    func testGarbageFramesAndAnotherProtocolVersionDoNoHarm() throws {
        let port = try freePort()
        let coordinator = try coordinator(try loopbackSweep(tasks: ["var_swap"], densities: "[1.0]"), port: port)
        let context = try Context()
        let intruder = try context.socket(.dealer)
        try intruder.setLinger(0)
        try intruder.connect("tcp://127.0.0.1:\(port)")
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<100 {
            let size = Int.random(in: 0...200, using: &generator)
            try intruder.send([Data((0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) })])
        }
        try intruder.send([Data("CSW".utf8) + Data([1, 1]) + Data("{\"worker\":".utf8)])
        var otherVersion = Message.hello(Hello(worker: "future", incarnation: "test", slots: 4, running: [])).encoded()
        otherVersion[0][3] = WireProtocol.version + 1
        try intruder.send(otherVersion)
        try intruder.send(Message.request(5).encoded() + [Data([1, 2, 3])])
        // Nothing of that is a worker: the coordinator answers a real message from this connection with rehello.
        try intruder.send(Message.heartbeat.encoded())
        XCTAssertEqual(try poll([intruder], timeout: 10_000), [true])
        XCTAssertEqual(try Message.decode(try XCTUnwrap(try intruder.receive())), .rehello)
        XCTAssertTrue(coordinator.isRunning)
        intruder.close()

        try worker("w0", port: port)
        waitUntil("the sweep finished", finished)
        XCTAssertTrue(try XCTUnwrap(snapshot()).shards.allSatisfy { $0.state == .done })
        waitUntil("the coordinator exited", timeout: 10) { !coordinator.isRunning }
        XCTAssertEqual(coordinator.terminationStatus, 0)
        let log = try String(contentsOf: directory.appendingPathComponent("coordinator.log"), encoding: .utf8)
        XCTAssertTrue(log.contains("protocol version \(WireProtocol.version + 1) is not supported"), log)
    }

    // MARK: failures that cannot succeed on retry (and those that can)

    func testADeterministicFailureFailsAtOnceAndATaskThatCannotBePreparedFailsOnlyItsPruneShards() throws {
        let invalid = "prune/d0.25-w64-a0.25-s0/var_swap"
        let crashing = "train/d1-w64-a1-s0"
        let sweep = try loopbackSweep(tasks: ["var_swap", "if_equals"], extra: """
              fail_permanently: [\(invalid)]
              unpreparable_tasks: [if_equals]
              crash_first_attempt: [\(crashing)]
            """)
        let run = try runBinary(["run", sweep.path, "--run-dir", runDirectory.path, "--slots", "2"])
        XCTAssertEqual(run.status, 1, run.output)
        let shards = try XCTUnwrap(snapshot()).shards
        func shard(_ id: String) -> ShardStatus? { shards.first { $0.id == id } }
        // A deterministic error: one attempt, its message, and the log's last line.
        XCTAssertEqual(shard(invalid)?.state, .failed)
        XCTAssertEqual(shard(invalid)?.attempts, 1)
        XCTAssertTrue(shard(invalid)?.error?.contains("exited with status 4 (not retried)") ?? false, shard(invalid)?.error ?? "")
        XCTAssertTrue(shard(invalid)?.error?.contains("simulate.fail_permanently") ?? false, shard(invalid)?.error ?? "")
        // The task that cannot be made fails its own prune shards at once, and nothing else.
        for model in ["d1-w64-a1-s0", "d0.25-w64-a0.25-s0"] {
            let prune = try XCTUnwrap(shard("prune/\(model)/if_equals"))
            XCTAssertEqual(prune.state, .failed)
            XCTAssertEqual(prune.attempts, 1)
            XCTAssertTrue(prune.error?.contains("task if_equals could not be prepared") ?? false, prune.error ?? "")
        }
        // A killed child keeps its retries.
        XCTAssertEqual(shard(crashing)?.state, .done)
        XCTAssertEqual(shard(crashing)?.attempts, 2)
        XCTAssertEqual(shards.filter { $0.state == .done }.map(\.id).sorted(),
                       ["prepare", "prune/d1-w64-a1-s0/var_swap", crashing, "train/d0.25-w64-a0.25-s0"].sorted())
    }

    func testIdleSlotsAreLentToTheRunningShardAndTakenBack() throws {
        // Two slots. Prepare runs alone for 2 s, then two train shards run side by side.
        let sweep = try loopbackSweep(steps: 40, stepSeconds: 0.05, tasks: ["var_swap"])
        let run = try runBinary(["run", sweep.path, "--run-dir", runDirectory.path, "--slots", "2"])
        XCTAssertEqual(run.status, 0, run.output)
        let shards = try XCTUnwrap(snapshot()).shards
        func mostThreads(_ id: String) throws -> Double? {
            let shard = try XCTUnwrap(shards.first { $0.id == id })
            return (try JSONSerialization.jsonObject(with: Data(shard.summary!.utf8)) as? [String: Double])?["most_threads"]
        }
        XCTAssertEqual(try mostThreads("prepare"), 2, "the child read the second slot's thread from its worker")
        let logs = RunDirectory(runDirectory).logs
        let workerLog = try FileManager.default.contentsOfDirectory(atPath: logs.path)
            .map { try String(contentsOf: logs.appendingPathComponent($0), encoding: .utf8) }.joined()
        XCTAssertTrue(workerLog.contains("prepare#1: 2 threads (1 idle slot lent)"), workerLog)
        // Once the train shards were leased, each ran with its own slot's thread, except when alone.
        let trainLines = workerLog.split(separator: "\n").filter { $0.contains("train/") && $0.contains(" lent)") }
        XCTAssertTrue(trainLines.allSatisfy { $0.contains("(1 idle slot lent)") || $0.contains(": 1 thread (") }, "\(trainLines)")
    }

    // MARK: commands and directories

    func testCommandsOnAMissingRunDirectoryCreateNothing() throws {
        let missing = directory.appendingPathComponent("missing-run")
        for arguments in [["resume", missing.path], ["retry", missing.path, "--failed"], ["status", missing.path],
                          ["report", missing.path], ["coordinator", "--resume", missing.path, "--bind", "tcp://127.0.0.1:\(try freePort())"]] {
            let result = try runBinary(arguments)
            XCTAssertNotEqual(result.status, 0, "\(arguments): \(result.output)")
            XCTAssertTrue(result.output.contains("no run directory at \(missing.path)"), "\(arguments): \(result.output)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: missing.path), "\(arguments) created the directory")
        }
        // An empty store file stays empty: nothing writes a schema into it.
        try FileManager.default.createDirectory(at: missing, withIntermediateDirectories: true)
        let store = RunDirectory(missing).store
        _ = FileManager.default.createFile(atPath: store.path, contents: nil)
        for arguments in [["resume", missing.path], ["retry", missing.path, "--failed"],
                          ["coordinator", "--resume", missing.path, "--bind", "tcp://127.0.0.1:\(try freePort())"]] {
            let result = try runBinary(arguments)
            XCTAssertNotEqual(result.status, 0, "\(arguments): \(result.output)")
            XCTAssertTrue(result.output.contains("\(store.path) is empty"), "\(arguments): \(result.output)")
            XCTAssertEqual(try Data(contentsOf: store).count, 0, "\(arguments) wrote into the empty store")
        }
        // A coordinator refused for want of keys leaves no run directory behind.
        let refused = try runBinary(["coordinator", try loopbackSweep().path, "--bind", "tcp://0.0.0.0:\(try freePort())",
                                     "--run-dir", runDirectory.path])
        XCTAssertNotEqual(refused.status, 0, refused.output)
        XCTAssertTrue(refused.output.contains("refusing to bind"), refused.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: runDirectory.path))
    }

    func testAWorkerThatCannotReachItsCoordinatorStopsAtOnceOnSIGTERM() throws {
        let port = try freePort()
        let sweep = try sweepFile(heartbeatSeconds: 0.1, workerDeadSeconds: 0.3)
        let coordinator = try coordinator(sweep, port: port)
        let worker = try self.worker("lonely", port: port)
        waitUntil("the worker joined") { (try? events())?.contains { $0.event == "worker_joined" } ?? false }
        kill(coordinator.processIdentifier, SIGKILL)
        // Silent coordinator: the worker reconnects again and again, waiting longer each time
        // (0.25 s, 0.5 s, 1 s, 2 s, then 4 s from about 5 s on).
        Thread.sleep(forTimeInterval: 6)
        let sent = Date()
        kill(worker.processIdentifier, SIGTERM)
        waitUntil("the worker exited", timeout: 15) { !worker.isRunning }
        XCTAssertLessThan(Date().timeIntervalSince(sent), 1, "the worker took this long to stop on SIGTERM")
    }
}
