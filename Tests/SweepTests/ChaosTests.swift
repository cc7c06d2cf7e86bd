import Foundation
import XCTest
@testable import Sweep

/// A tiny simulated sweep run twice: undisturbed, then under random SIGKILLs of workers,
/// shard children and the coordinator. Nothing may be lost or done twice, and every result
/// must be the undisturbed run's.
final class ChaosTests: ClusterTestCase {
    private static let workers = ["w0", "w1", "w2"]
    private static let minimumKills = 20
    /// Kills stop at this many, or after `chaosSeconds` (short of the minimum, the test fails).
    private static let kills = 24
    private static let chaosSeconds = 30.0

    private func chaosSweep() throws -> URL {
        let url = directory.appendingPathComponent("chaos.yaml")
        try """
            name: chaos
            grid:
              density: [1.0, 0.5, 0.25]
              d_model: [64]
              task: [var_swap, if_equals, bracket_brace]
            train:
              checkpoint_every: 0.2
            controls:
              random_init: false    # the machinery alone; controls would only lengthen both runs
            retries:
              max_attempts: 1000
              backoff_seconds: 0.05
              backoff_max_seconds: 0.2
            timeouts:
              heartbeat_seconds: 0.2
              worker_dead_seconds: 1
            simulate:
              steps: 40
              step_seconds: 0.05
            """.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// Each shard's outputs and summary; the step a shard resumed from and the threads its worker lent
    /// it are the things a disturbance may change.
    private func results(of run: URL) throws -> [String: String] {
        let store = try RunDirectory(run).openStore(readOnly: true)
        return try store.read { tx in
            var results: [String: String] = [:]
            for shard in try tx.shards() {
                var summary = (try? JSONDecoder().decode([String: Double].self, from: Data((shard.summary ?? "").utf8))) ?? [:]
                summary["resumed_from_step"] = nil
                summary["most_threads"] = nil
                let outputs = try tx.outputs(ofShard: shard.id).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                results[shard.id] = "\(shard.state) \(outputs.joined(separator: ",")) \(encodeSummary(summary))"
            }
            return results
        }
    }

    /// The processes whose parent is `parent`, from /proc.
    private func children(of parent: pid_t) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { name -> pid_t? in
            guard let pid = pid_t(name), let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            // After "pid (comm)": state, then the parent's pid.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && pid_t(fields[1]) == parent ? pid : nil
        }
    }

    func testRandomKillsLoseNothingDuplicateNothingAndChangeNoResult() throws {
        let sweep = try chaosSweep()
        let reference = directory.appendingPathComponent("reference")
        let referenceStart = Date()
        let undisturbed = try spawn("reference", ["run", sweep.path, "--run-dir", reference.path, "--slots", "3"])
        undisturbed.waitUntilExit()
        XCTAssertEqual(undisturbed.terminationStatus, 0, log("reference"))
        let expected = try results(of: reference)
        print("undisturbed run: \(String(format: "%.1f", Date().timeIntervalSince(referenceStart))) s")
        XCTAssertEqual(expected.count, 13)

        let seed = UInt64(Date().timeIntervalSince1970 * 1000)
        var random = FrameFuzzer(seed: seed, seeds: [])
        let port = try freePort()
        let endpoint = "tcp://127.0.0.1:\(port)"
        func startCoordinator(resume: Bool) throws -> Process {
            try spawn("coordinator", resume ? ["coordinator", "--resume", runDirectory.path, "--bind", endpoint]
                                            : ["coordinator", sweep.path, "--bind", endpoint, "--run-dir", runDirectory.path])
        }
        var coordinator = try startCoordinator(resume: false)
        waitUntil("the coordinator listens") { log("coordinator").contains("coordinator on ") }
        var workers = try Dictionary(uniqueKeysWithValues: ChaosTests.workers.map { ($0, try spawn($0, workerArguments($0, connect: endpoint))) })

        var kills = ["worker": 0, "shard child": 0, "coordinator": 0]
        let started = Date()
        while !finished() && kills.values.reduce(0, +) < ChaosTests.kills && Date().timeIntervalSince(started) < ChaosTests.chaosSeconds {
            Thread.sleep(forTimeInterval: 0.2 + Double(random.below(300)) / 1000)
            if !coordinator.isRunning {
                // A coordinator that could not bind yet, or that was killed: back with --resume.
                coordinator = try startCoordinator(resume: true)
                continue
            }
            switch random.below(10) {
            case 0..<4:
                // A worker, restarted at once under the same name.
                let name = ChaosTests.workers[random.below(ChaosTests.workers.count)]
                kill(workers[name]!.processIdentifier, SIGKILL)
                workers[name]!.waitUntilExit()
                workers[name] = try spawn(name, workerArguments(name, connect: endpoint))
                kills["worker"]! += 1
            case 4..<8:
                let shards = workers.values.flatMap { children(of: $0.processIdentifier) }
                guard !shards.isEmpty else { continue }
                kill(shards[random.below(shards.count)], SIGKILL)
                kills["shard child"]! += 1
            default:
                kill(coordinator.processIdentifier, SIGKILL)
                coordinator.waitUntilExit()
                coordinator = try startCoordinator(resume: true)
                kills["coordinator"]! += 1
            }
        }
        let chaos = Date().timeIntervalSince(started)
        print("chaos (seed \(seed)): \(kills) in \(String(format: "%.1f", chaos)) s")
        XCTAssertGreaterThanOrEqual(kills.values.reduce(0, +), ChaosTests.minimumKills, "seed \(seed): \(kills)")
        waitUntil("the disturbed sweep finished", timeout: 60) {
            if !finished() && !coordinator.isRunning { coordinator = (try? startCoordinator(resume: true)) ?? coordinator }
            return finished()
        }

        let snapshot = try XCTUnwrap(snapshot())
        XCTAssertTrue(snapshot.shards.allSatisfy { $0.state == .done }, "seed \(seed): " + StatusReport.table(snapshot))
        XCTAssertEqual(try results(of: runDirectory), expected, "seed \(seed): the results differ from the undisturbed run's")
        // Nothing done twice: one result and one completion per shard.
        XCTAssertEqual(try store().read { try $0.resultCount() }, expected.count)
        let done = try events().filter { $0.event == "done" }.compactMap(\.shard)
        XCTAssertEqual(done.count, expected.count, "seed \(seed): \(done)")
        XCTAssertEqual(Set(done).count, expected.count)
        // Nothing lost: every output is in the coordinator's artifacts, whole.
        for shard in snapshot.shards {
            for hash in try store().read({ try $0.outputs(ofShard: shard.id) }).values {
                XCTAssertEqual(try SHA256.hex(fileAt: RunDirectory(runDirectory).artifacts.appendingPathComponent(hash)), hash)
            }
        }
    }
}
