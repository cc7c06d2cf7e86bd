import Foundation
import XCTest
@testable import Sweep

final class StoreTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("store-test-\(UUID().uuidString)")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func makeStore(maxAttempts: Int = 2) throws -> (Store, SweepSpec) {
        var spec = try SweepSpec.parse("grid: {density: [1.0], d_model: [64], task: [var_swap, if_equals]}", file: "t.yaml")
        spec.retries.maxAttempts = maxAttempts
        spec.retries.backoffSeconds = 10
        let store = try newStore(directory)
        try store.write { try $0.createSweep(spec, shards: plan(spec), now: 0) }
        return (store, spec)
    }

    private func artifact(_ store: Store, _ text: String) throws -> String {
        let hash = SHA256.hex(Data(text.utf8))
        try store.write { try $0.registerArtifact(hash: hash, size: text.utf8.count, kind: "test", now: 0) }
        return hash
    }

    /// A store of the sweep `yaml` whose prepare shard is done, and the hash of its data.
    private func storeWithDataPrepared(_ yaml: String) throws -> (Store, String) {
        let spec = try SweepSpec.parse(yaml, file: "t.yaml")
        let store = try newStore(directory)
        try store.write { try $0.createSweep(spec, shards: plan(spec), now: 0) }
        let data = try artifact(store, "data")
        _ = try store.write { try $0.lease(owner: "w", count: 1, now: 0, expiry: 5) }
        _ = try store.write { try $0.recordResult(LeaseKey(shard: "prepare", attempt: 1), outputs: ["data": data], summary: "{}", now: 1) }
        return (store, data)
    }

    func testLeasesFollowDependenciesAndResultsAreRecordedOnce() throws {
        let (store, _) = try makeStore()
        let first = try store.write { try $0.lease(owner: "w1", count: 10, now: 1, expiry: 6) }
        XCTAssertEqual(first.map(\.shard), ["prepare"], "only the prepare shard is ready at the start")
        XCTAssertEqual(first[0].attempt, 1)
        let data = try artifact(store, "data")
        XCTAssertEqual(try store.write { try $0.recordResult(LeaseKey(shard: "prepare", attempt: 1), outputs: ["data": data],
                                                             summary: "{}", now: 2) }, .recorded)
        XCTAssertEqual(try store.write { try $0.recordResult(LeaseKey(shard: "prepare", attempt: 1), outputs: ["data": data],
                                                             summary: "{}", now: 3) }, .stale, "a duplicate is ignored")
        let train = try store.write { try $0.lease(owner: "w2", count: 10, now: 3, expiry: 8) }
        XCTAssertEqual(train.map(\.shard), ["train/d1-w64-a1-s0"])
        XCTAssertEqual(train[0].inputs, ["prepare.data": ArtifactRef(hash: data, size: 4)])

        let missing = String(repeating: "0", count: 64)
        XCTAssertEqual(try store.write { try $0.recordResult(LeaseKey(shard: train[0].shard, attempt: 1), outputs: ["checkpoint": missing],
                                                             summary: "{}", now: 4) }, .missingArtifacts([missing]))
        let checkpoint = try artifact(store, "weights")
        XCTAssertEqual(try store.write { try $0.recordResult(LeaseKey(shard: train[0].shard, attempt: 1),
                                                             outputs: ["checkpoint": checkpoint], summary: "{}", now: 4) }, .recorded)
        let prune = try store.write { try $0.lease(owner: "w1", count: 10, now: 5, expiry: 10) }
        XCTAssertEqual(prune.count, 2)
        XCTAssertEqual(Set(prune[0].inputs.keys), ["prepare.data", "train.checkpoint"])
        XCTAssertEqual(try store.read { try $0.resultCount() }, 2)
    }

    func testEveryModelStartsTrainingBeforeCircuitsArePruned() throws {
        let (store, data) = try storeWithDataPrepared("grid: {density: [1.0, 0.5], d_model: [64], task: [var_swap]}\ncontrols: {random_init: false}")
        let first = try store.write { try $0.lease(owner: "w", count: 1, now: 1, expiry: 5) }
        XCTAssertEqual(first.map(\.shard), ["train/d1-w64-a1-s0"])
        _ = try store.write { try $0.recordResult(LeaseKey(shard: first[0].shard, attempt: 1), outputs: ["checkpoint": data], summary: "{}", now: 2) }
        let next = try store.write { try $0.lease(owner: "w", count: 2, now: 2, expiry: 5) }
        XCTAssertEqual(next.map(\.shard), ["train/d0.5-w64-a0.25-s0", "prune/d1-w64-a1-s0/var_swap"])
    }

    func testFailuresBackOffThenFailTheShardAndItsDependents() throws {
        let (store, spec) = try makeStore(maxAttempts: 2)
        _ = try store.write { try $0.lease(owner: "w", count: 1, now: 0, expiry: 5) }
        let retry = try store.write { try $0.recordFailure(LeaseKey(shard: "prepare", attempt: 1), error: "boom", logTail: "tail",
                                                          retries: spec.retries, now: 1) }
        XCTAssertEqual(retry, .retrying(notBefore: 11))
        XCTAssertTrue(try store.write { try $0.lease(owner: "w", count: 1, now: 5, expiry: 10) }.isEmpty, "backing off")
        let second = try store.write { try $0.lease(owner: "w", count: 1, now: 11, expiry: 16) }
        XCTAssertEqual(second.map(\.attempt), [2])
        XCTAssertEqual(try store.write { try $0.recordFailure(LeaseKey(shard: "prepare", attempt: 1), error: "late", logTail: nil,
                                                              retries: spec.retries, now: 12) }, .stale)
        XCTAssertEqual(try store.write { try $0.recordFailure(LeaseKey(shard: "prepare", attempt: 2), error: "boom again", logTail: "last lines",
                                                              retries: spec.retries, now: 12) }, .failed)
        let shards = try store.read { try $0.shards() }
        XCTAssertTrue(shards.allSatisfy { $0.state == .failed })
        XCTAssertEqual(shards[0].error, "boom again")
        XCTAssertEqual(shards[0].logTail, "last lines")
        XCTAssertTrue(shards[1].error?.contains("prepare, failed") ?? false)
        XCTAssertTrue(try store.read { try $0.counts() }.finished)

        XCTAssertEqual(try store.write { try $0.retryFailed(maxAttempts: 2, now: 20) }, 4)
        let again = try store.write { try $0.lease(owner: "w", count: 10, now: 21, expiry: 26) }
        XCTAssertEqual(again.map(\.shard), ["prepare"], "dependents wait for prepare again")
        XCTAssertEqual(again[0].attempt, 3)
    }

    func testAdoptionAndCheckpoints() throws {
        let (store, _) = try makeStore()
        _ = try store.write { try $0.lease(owner: "old", count: 1, now: 0, expiry: 5) }
        XCTAssertFalse(try store.write { try $0.adoptLease(LeaseKey(shard: "prepare", attempt: 2), owner: "new", now: 1) })
        XCTAssertTrue(try store.write { try $0.adoptLease(LeaseKey(shard: "prepare", attempt: 1), owner: "new", now: 1) })
        XCTAssertEqual(try store.read { try $0.activeLeases() }.first?.owner, "new")
        let hash = try artifact(store, "half-trained")
        XCTAssertEqual(try store.write { try $0.recordCheckpoint(LeaseKey(shard: "prepare", attempt: 1), hash: hash, step: 5, now: 2) }, .recorded)
        XCTAssertEqual(try store.write { try $0.recordCheckpoint(LeaseKey(shard: "prepare", attempt: 9), hash: hash, step: 6, now: 2) }, .stale)
    }

    func testAnInterruptedTrainingShardUsesNoAttemptAndContinuesFirst() throws {
        let (store, _) = try storeWithDataPrepared("grid: {density: [1.0], d_model: [32, 48, 64], task: [var_swap]}\n" +
                                                   "controls: {random_init: false}\nretries: {max_attempts: 2}")
        let trains = try store.write { try $0.lease(owner: "w", count: 3, now: 1, expiry: 5) }
        XCTAssertEqual(trains.map(\.shard), ["train/d1-w64-a1-s0", "train/d1-w48-a1-s0", "train/d1-w32-a1-s0"], "widest first")
        let checkpoint = try artifact(store, "half-trained")
        XCTAssertEqual(try store.write { try $0.recordCheckpoint(trains[2].key, hash: checkpoint, step: 5, now: 2) }, .recorded)

        // The coordinator stops three times, more than the shards have attempts; none of them fails.
        var now = 3.0
        for round in 1...3 {
            let held = try store.read { try $0.activeLeases() }.map(\.lease)
            XCTAssertEqual(held.count, 3)
            for lease in held {
                XCTAssertTrue(try store.write { try $0.releaseInterrupted(lease, reason: "coordinator restarted", now: now) })
            }
            XCTAssertFalse(try store.write { try $0.releaseInterrupted(held[0], reason: "late", now: now) }, "stale")
            let status = try store.read { try $0.shards() }.filter { $0.kind == ShardKindName.train }
            XCTAssertTrue(status.allSatisfy { $0.state == .pending && $0.error == "coordinator restarted" })
            XCTAssertTrue(status.allSatisfy { $0.maxAttempts == 2 + round }, "an interruption uses no attempt")
            // No backoff, and the checkpointed shard goes out first although it is planned last.
            let first = try store.write { try $0.lease(owner: "w", count: 1, now: now, expiry: now + 5) }
            XCTAssertEqual(first.map(\.shard), ["train/d1-w32-a1-s0"])
            XCTAssertEqual(first.first?.resume, ArtifactRef(hash: checkpoint, size: 12))
            XCTAssertEqual(try store.write { try $0.lease(owner: "w", count: 5, now: now, expiry: now + 5) }.map(\.shard),
                           ["train/d1-w64-a1-s0", "train/d1-w48-a1-s0"])
            now += 1
        }
        let history = try store.read { try $0.attempts(ofShard: "train/d1-w32-a1-s0") }
        XCTAssertEqual(history.map(\.outcome), ["interrupted", "interrupted", "interrupted", nil])
    }

    func testStatusCanReadWhileTheCoordinatorWrites() throws {
        let (store, _) = try makeStore()
        _ = try store.write { try $0.lease(owner: "w", count: 1, now: 0, expiry: 5) }
        try store.write { try $0.recordProgress(LeaseKey(shard: "prepare", attempt: 1), step: 3, total: 9, loss: 1.5, now: 1) }
        let snapshot = try StatusReport.snapshot(runDirectory: directory)
        XCTAssertFalse(snapshot.finished)
        XCTAssertEqual(snapshot.shards.first?.step, 3)
        let json = try JSONSerialization.jsonObject(with: Data(StatusReport.json(snapshot).utf8)) as! [String: Any]
        XCTAssertEqual(json["finished"] as? Bool, false)
        let first = (json["shards"] as! [[String: Any]])[0]
        XCTAssertEqual(first["id"] as? String, "prepare")
        XCTAssertEqual(first["kind"] as? String, "prepare")
        XCTAssertEqual(first["state"] as? String, "leased")
        XCTAssertEqual(first["attempts"] as? Int, 1)
        XCTAssertEqual(first["total_steps"] as? Int, 9)
        XCTAssertEqual(first["max_attempts"] as? Int, snapshot.shards[0].maxAttempts)
        XCTAssertNil(first["totalSteps"])
    }

    func testStatusJSONHoldsEachSummaryAsAnObject() throws {
        let (store, _) = try makeStore()
        let lease = try XCTUnwrap(try store.write { try $0.lease(owner: "w", count: 1, now: 0, expiry: 5) }.first)
        _ = try store.write { try $0.recordResult(lease.key, outputs: [:],
                                                  summary: encodeSummary(["vocab_size": 512, "loss": .infinity]), now: 1) }
        let json = try JSONSerialization.jsonObject(with: Data(StatusReport.json(try StatusReport.snapshot(runDirectory: directory)).utf8)) as! [String: Any]
        let first = (json["shards"] as! [[String: Any]])[0]
        let summary = try XCTUnwrap(first["summary"] as? [String: Any], "\(first)")
        XCTAssertEqual(summary["vocab_size"] as? Int, 512)
        XCTAssertEqual(summary["loss"] as? String, "inf")
    }

    func testPruningAgainKeepsTheTrainedModelsAndDropsOnlyTheCircuits() throws {
        let (store, _) = try makeStore()
        let data = try artifact(store, "data")
        let prunes = try store.read { try $0.shards() }.filter { $0.kind == "prune" }.map(\.id)
        XCTAssertEqual(prunes.count, 2)
        var now = 0.0
        /// Runs shards one at a time until none is left, or returns the lease of `hold` unfinished.
        func run(holding hold: String? = nil) throws -> Lease? {
            while true {
                let leases = try store.write { try $0.lease(owner: "w", count: 1, now: now, expiry: now + 5) }
                guard let lease = leases.first else { return nil }
                if lease.shard == hold { return lease }
                now += 1
                XCTAssertEqual(try store.write { try $0.recordResult(lease.key, outputs: ["out": data], summary: "{}", now: now) }, .recorded)
            }
        }
        let running = try XCTUnwrap(try run(holding: prunes[1]))
        XCTAssertThrowsError(try store.write { try $0.repruneAll(maxAttempts: 2, now: now) }) {
            XCTAssertTrue("\($0)".contains("stop the sweep before pruning again"), "\($0)")
        }
        now += 1
        _ = try store.write { try $0.recordResult(running.key, outputs: ["out": data], summary: "{}", now: now) }
        XCTAssertTrue(try store.read { try $0.counts() }.finished)

        XCTAssertEqual(try store.write { try $0.repruneAll(maxAttempts: 2, now: now) }, prunes.count)
        for shard in try store.read({ try $0.shards() }) {
            XCTAssertEqual(shard.state, shard.kind == "prune" ? .pending : .done, shard.id)
            XCTAssertEqual(try store.read { try $0.outputs(ofShard: shard.id) }.isEmpty, shard.kind == "prune", shard.id)
        }
        XCTAssertNil(try run())
        XCTAssertTrue(try store.read { try $0.counts() }.finished)
        XCTAssertEqual(try store.read { try $0.attempts(ofShard: prunes[1]) }.count, 2, "the first pruning stays in the history")
    }

    /// Runs every shard to done, one a second, each with the same output; returns that output and the time.
    private func finishEveryShard(_ store: Store) throws -> (data: String, now: Double) {
        let data = try artifact(store, "data")
        var now = 0.0
        while let lease = try store.write({ try $0.lease(owner: "w", count: 1, now: now, expiry: now + 5) }).first {
            now += 1
            _ = try store.write { try $0.recordResult(lease.key, outputs: ["out": data], summary: "{}", now: now) }
        }
        return (data, now)
    }

    func testExtendingAddsOnlyNewGridPointsAndKeepsFinishedWork() throws {
        let (store, spec) = try makeStore()
        let (data, now) = try finishEveryShard(store)
        XCTAssertTrue(try store.read { try $0.counts() }.finished)
        let before = try store.read { try $0.shardRecords() }

        var seeds = spec
        seeds.grid.seed = [0, 1]
        let added = try store.write { try $0.extendSweep(seeds, shards: plan(seeds), now: now) }
        XCTAssertEqual(added, ["train/d1-w64-a1-s1", "prune/d1-w64-a1-s1/var_swap", "prune/d1-w64-a1-s1/if_equals"])
        XCTAssertEqual(try store.read { try $0.sweepSpec() }, seeds)
        let after = try store.read { try $0.shardRecords() }
        XCTAssertEqual(Array(after.prefix(before.count)).map(\.state), before.map(\.state), "finished shards stay done")
        XCTAssertEqual(try store.read { try $0.outputs(ofShard: "train/d1-w64-a1-s0") }, ["out": data])
        let ready = try store.write { try $0.lease(owner: "w", count: 10, now: now, expiry: now + 5) }
        XCTAssertEqual(ready.map(\.shard), ["train/d1-w64-a1-s1"], "the new model waits only on what is not done")
        XCTAssertEqual(ready[0].inputs, ["prepare.out": ArtifactRef(hash: data, size: 4)])
        XCTAssertEqual(try store.write { try $0.extendSweep(seeds, shards: plan(seeds), now: now) }, [], "extending again adds nothing")

        var longer = seeds
        longer.train.steps += 1
        XCTAssertThrowsError(try store.write { try $0.extendSweep(longer, shards: plan(longer), now: now) }) {
            XCTAssertTrue("\($0)".contains("alter shard train/d1-w64-a1-s0 (train)"), "\($0)")
        }
        var fewer = seeds
        fewer.grid.seed = [1]
        XCTAssertThrowsError(try store.write { try $0.extendSweep(fewer, shards: plan(fewer), now: now) }) {
            XCTAssertTrue("\($0)".contains("shard train/d1-w64-a1-s0 of the run is not in the new grid"), "\($0)")
        }
        var moreTasks = seeds
        moreTasks.grid.task.append("bracket_brace")
        XCTAssertThrowsError(try store.write { try $0.extendSweep(moreTasks, shards: plan(moreTasks), now: now) }) {
            XCTAssertTrue("\($0)".contains("alter shard prepare (grid.task)"), "\($0)")
        }
        XCTAssertEqual(try store.read { try $0.shardRecords() }.count, after.count, "a refused extension changes nothing")
    }

    func testNewPruningSettingsReachEveryPruneShardAndKeepTheTrainedModels() throws {
        let (store, spec) = try makeStore()
        let (_, now) = try finishEveryShard(store)
        var finer = spec
        finer.prune.lambdas = [1e-4, 2e-4, 3e-4]
        let changed = try store.write { tx -> (Int, Int) in
            (try tx.changePruning(to: finer, shards: plan(finer), now: now), try tx.repruneAll(maxAttempts: 1, now: now))
        }
        XCTAssertEqual(changed.0, 2, "both prune shards take the new λ")
        XCTAssertEqual(changed.1, 2)
        XCTAssertEqual(try store.read { try $0.sweepSpec() }, finer)
        let shards = try store.read { try $0.shardRecords() }
        XCTAssertEqual(shards.filter { $0.kind != ShardKindName.prune }.map(\.state), ["done", "done"], "prepare and the model stay done")
        let leased = try store.write { try $0.lease(owner: "w", count: 10, now: now, expiry: now + 5) }
        XCTAssertEqual(leased.count, 2)
        XCTAssertTrue(try leased.allSatisfy { try ShardParams.decode($0.params).prune?.lambdas == [1e-4, 2e-4, 3e-4] })

        var longer = finer
        longer.train.steps += 1
        XCTAssertThrowsError(try store.write { try $0.changePruning(to: longer, shards: plan(longer), now: now) }) {
            XCTAssertTrue("\($0)".contains("would alter shard train/d1-w64-a1-s0 (train)"), "\($0)")
        }
        var seeds = finer
        seeds.grid.seed = [0, 1]
        XCTAssertThrowsError(try store.write { try $0.changePruning(to: seeds, shards: plan(seeds), now: now) }) {
            XCTAssertTrue("\($0)".contains("adds shard train/d1-w64-a1-s1"), "\($0)")
        }
        var running = finer
        running.prune.lambdas = [1e-3]
        XCTAssertThrowsError(try store.write { try $0.changePruning(to: running, shards: plan(running), now: now) }) {
            XCTAssertTrue("\($0)".contains("is running"), "\($0)")
        }
        XCTAssertEqual(try store.read { try $0.sweepSpec() }, finer, "a refused change changes nothing")
    }

    func testRetryClearsTheMessagesOfTheAttemptsBefore() throws {
        let (store, spec) = try makeStore(maxAttempts: 1)
        _ = try store.write { try $0.lease(owner: "w", count: 1, now: 0, expiry: 5) }
        _ = try store.write { try $0.recordFailure(LeaseKey(shard: "prepare", attempt: 1), error: "boom", logTail: "tail",
                                                   retries: spec.retries, now: 1) }
        XCTAssertTrue(try store.read { try $0.shards() }.dropFirst().allSatisfy { $0.error?.contains("prepare, failed") ?? false })
        _ = try store.write { try $0.retryFailed(maxAttempts: 1, now: 2) }
        let shards = try store.read { try $0.shards() }
        XCTAssertTrue(shards.allSatisfy { $0.state == .pending && $0.error == nil && $0.logTail == nil },
                      shards.map { "\($0.id): \($0.error ?? "-")" }.joined(separator: "\n"))
        XCTAssertEqual(try store.read { try $0.attempts(ofShard: "prepare") }.first?.error, "boom", "the history stays")
    }

    func testABrokenStoreFileIsNamedAndLeftAsItIs() throws {
        let run = RunDirectory(directory)
        // Closed, so the whole store is in its file and not in the write-ahead log.
        do { _ = try makeStore() }
        let good = try Data(contentsOf: run.store)
        XCTAssertGreaterThan(good.count, 3 * 4096)
        let cases: [(String, Data, String)] = [
            ("empty", Data(), "is empty"),
            ("garbage", Data("this is not a database, it is a shopping list\n".utf8), "not a sweep store"),
            ("truncated", good.prefix(good.count / 3), "store.sqlite"),
        ]
        for (name, content, expected) in cases {
            try? FileManager.default.removeItem(at: run.store.appendingPathExtension("wal"))
            try? FileManager.default.removeItem(at: run.store.appendingPathExtension("shm"))
            try content.write(to: run.store)
            for readOnly in [false, true] {
                XCTAssertThrowsError(try run.openStore(readOnly: readOnly).read { try $0.counts() }, name) { error in
                    XCTAssertTrue("\(error)".contains(run.store.path), "\(name): \(error)")
                    XCTAssertTrue("\(error)".contains(expected), "\(name): \(error)")
                    XCTAssertFalse("\(error)".contains("SQLite error"), "\(name): \(error)")
                }
                XCTAssertEqual(try Data(contentsOf: run.store), content, "\(name): the file was not written")
            }
        }
        XCTAssertThrowsError(try RunDirectory(directory.appendingPathComponent("nonesuch")).openStore()) {
            XCTAssertTrue("\($0)".contains("no run directory at"), "\($0)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.appendingPathComponent("nonesuch").path))
    }

    func testAFullDiskIsAnErrorNamingTheFile() throws {
        let artifacts = try ArtifactStore(directory: directory.appendingPathComponent("artifacts"))
        // /dev/full fails every write with ENOSPC, as a full disk does.
        let partial = artifacts.incoming.appendingPathComponent("full")
        try FileManager.default.createSymbolicLink(atPath: partial.path, withDestinationPath: "/dev/full")
        XCTAssertThrowsError(try artifacts.append(Data(count: 100), to: partial)) { error in
            XCTAssertEqual("\(error)", "cannot write \(partial.path): No space left on device")
        }
        // Foundation's own wording of the same error becomes errno's, with the file.
        let error = fileError("cannot write", partial, CocoaError(.fileWriteOutOfSpace))
        XCTAssertEqual(error.description, "cannot write \(partial.path): No space left on device")
        // As a shard's child reports a failed write of its own.
        XCTAssertEqual(describe(CocoaError(.fileWriteOutOfSpace, userInfo: [NSFilePathErrorKey: partial.path])),
                       "cannot use \(partial.path): No space left on device")
    }
}
