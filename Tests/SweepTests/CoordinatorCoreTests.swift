import Foundation
import Logging
import XCTest
@testable import Sweep

/// The coordinator's decisions without sockets: messages in, replies out, a clock the test moves.
final class CoordinatorCoreTests: XCTestCase {
    private var directory: URL!
    private var logs: LogCapture!
    private var now = 1000.0

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("core-test-\(UUID().uuidString)")
        logs = LogCapture()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    /// heartbeat 1 s, dead after 5 s, retries after 2 s.
    private func makeCore(tasks: String = "[var_swap]", maxAttempts: Int = 3) throws -> CoordinatorCore {
        let run = RunDirectory(directory)
        if !FileManager.default.fileExists(atPath: run.store.path) {
            try run.create(spec: try SweepSpec.parse("""
                name: core
                grid: {density: [1.0], d_model: [64], task: \(tasks)}
                retries: {max_attempts: \(maxAttempts), backoff_seconds: 2, backoff_max_seconds: 2}
                timeouts: {heartbeat_seconds: 1, worker_dead_seconds: 5}
                simulate: {steps: 2}
                """, file: "core.yaml"))
        }
        let logs = self.logs!
        return try CoordinatorCore(store: try run.openStore(), artifacts: try ArtifactStore(directory: run.artifacts),
                                   endpoint: "test", logger: Logger(label: "core") { _ in logs }, now: now)
    }

    @discardableResult
    private func send(_ core: CoordinatorCore, _ identity: String, _ messages: Message...) throws -> [Message] {
        try core.process(messages.map { (Data(identity.utf8), $0.encoded()) }, now: now)
            .filter { $0.identity == Data(identity.utf8) }.map(\.message)
    }

    private func hello(_ name: String, _ incarnation: String, slots: Int = 1, running: [LeaseKey] = []) -> Message {
        .hello(Hello(worker: name, incarnation: incarnation, slots: slots, running: running))
    }

    private func leases(in replies: [Message]) -> [Lease] {
        replies.flatMap { reply -> [Lease] in
            if case .leases(let leases) = reply { return leases }
            return []
        }
    }

    private func shard(_ core: CoordinatorCore, _ id: String) throws -> ShardStatus {
        try XCTUnwrap(try core.store.read { try $0.shards() }.first { $0.id == id })
    }

    /// Uploads `data` as one artifact from `identity`.
    private func upload(_ core: CoordinatorCore, _ identity: String, _ data: Data) throws -> String {
        let hash = SHA256.hex(data)
        try send(core, identity, .put(ChunkHeader(hash: hash, size: data.count, offset: 0, kind: "data"), data))
        return hash
    }

    func testWelcomeLeaseResultAndAck() throws {
        let core = try makeCore()
        let welcome = try send(core, "w0/a/1", hello("w0", "a"))
        XCTAssertTrue(welcome.contains(.welcome(Welcome(heartbeatSeconds: 1, workerDeadSeconds: 5))), "\(welcome)")
        let granted = leases(in: try send(core, "w0/a/1", .request(1)))
        XCTAssertEqual(granted.map(\.shard), ["prepare"])
        let key = granted[0].key
        let data = Data("prepared".utf8)
        let hash = SHA256.hex(data)
        // A result whose artifact is not there yet is answered with what to upload.
        XCTAssertEqual(try send(core, "w0/a/1", .result(ResultReport(lease: key, outputs: ["data": hash], summary: "{}"))),
                       [.missing(key, [hash])])
        XCTAssertEqual(try upload(core, "w0/a/1", data), hash)
        XCTAssertTrue(try send(core, "w0/a/1", .result(ResultReport(lease: key, outputs: ["data": hash], summary: "{}")))
            .contains(.ack(key)))
        XCTAssertEqual(try shard(core, "prepare").state, .done)
        XCTAssertEqual(try String(contentsOf: RunDirectory(directory).artifacts.appendingPathComponent(hash), encoding: .utf8), "prepared")
        // A duplicate is acknowledged and changes nothing.
        XCTAssertTrue(try send(core, "w0/a/1", .result(ResultReport(lease: key, outputs: ["data": hash], summary: "{}")))
            .contains(.ack(key)))
        XCTAssertEqual(try core.store.read { try $0.resultCount() }, 1)
        // The chunk the next shard's worker asks for.
        let chunk = try send(core, "w0/a/1", .get(ChunkRequest(hash: hash, offset: 2, length: 100)))
        XCTAssertEqual(chunk, [.chunk(ChunkHeader(hash: hash, size: data.count, offset: 2, kind: nil), data.dropFirst(2))])
    }

    func testAMessageFromAnUnknownConnectionIsAnsweredWithRehelloAndChangesNothing() throws {
        let core = try makeCore()
        XCTAssertEqual(try send(core, "stranger", .request(5)), [.rehello])
        XCTAssertEqual(core.workerCount, 0)
        XCTAssertEqual(try shard(core, "prepare").state, .pending)
    }

    /// A worker restarted at once under the same name (and, before incarnations, the same
    /// routing identity) must not inherit the dead process's lease.
    func testAWorkerRestartedUnderTheSameNameInheritsNoLease() throws {
        let core = try makeCore()
        try send(core, "w0/1", hello("w0", "first"))
        XCTAssertEqual(leases(in: try send(core, "w0/1", .request(1))).map(\.attempt), [1])
        // The new process on the same routing identity, running nothing.
        try send(core, "w0/1", hello("w0", "second"))
        let prepare = try shard(core, "prepare")
        XCTAssertEqual(prepare.state, .pending, "the lease of the process before went back")
        XCTAssertTrue(prepare.error?.contains("restarted") ?? false, prepare.error ?? "")
        now += 2.5
        XCTAssertEqual(leases(in: try send(core, "w0/1", .request(1))).map(\.attempt), [2], "the new process gets it again")
    }

    func testASilentWorkersLeasesGoBackWhileANewProcessOfItsNameWorks() throws {
        let core = try makeCore()
        try send(core, "w0/a/1", hello("w0", "a"))
        XCTAssertEqual(leases(in: try send(core, "w0/a/1", .request(1))).count, 1)
        // Killed and restarted: the new process says hello on its own identity and heartbeats.
        try send(core, "w0/b/1", hello("w0", "b"), .request(1))
        for _ in 0..<5 {
            now += 1.1
            try send(core, "w0/b/1", .heartbeat)
        }
        XCTAssertEqual(try shard(core, "prepare").state, .pending)
        XCTAssertTrue(try shard(core, "prepare").error?.contains("stopped answering") ?? false)
        XCTAssertEqual(core.workerCount, 1)
        now += 2.5
        let again = leases(in: try send(core, "w0/b/1", .heartbeat))
        XCTAssertEqual(again.map(\.attempt), [2], "the outstanding request of the new process is served")
    }

    func testACoordinatorThatDidNotRunCountsNoSilenceAgainstItsWorkers() throws {
        let core = try makeCore()
        try send(core, "w0/a/1", hello("w0", "a"))
        XCTAssertEqual(leases(in: try send(core, "w0/a/1", .request(1))).count, 1)
        // The machine is suspended for 30 s; on waking, the coordinator turns before the worker speaks.
        now += 30
        _ = try core.process([], now: now)
        XCTAssertEqual(try shard(core, "prepare").state, .leased, "the worker could not be heard while the coordinator did not run")
        XCTAssertEqual(core.workerCount, 1)
        try send(core, "w0/a/1", .heartbeat)
        XCTAssertEqual(try shard(core, "prepare").attempts, 1)
        // Real silence while the coordinator turns still counts.
        for _ in 0..<6 {
            now += 1
            _ = try core.process([], now: now)
        }
        XCTAssertEqual(try shard(core, "prepare").state, .pending)
        XCTAssertTrue(try shard(core, "prepare").error?.contains("stopped answering") ?? false)
    }

    func testAReconnectOfTheSameProcessKeepsWhatItStillRuns() throws {
        let core = try makeCore()
        try send(core, "w0/a/1", hello("w0", "a"))
        let key = try XCTUnwrap(leases(in: try send(core, "w0/a/1", .request(1))).first?.key)
        // A new connection of the same process that still runs the shard.
        try send(core, "w0/a/2", hello("w0", "a", running: [key]))
        XCTAssertEqual(try shard(core, "prepare").state, .leased)
        XCTAssertEqual(core.workerCount, 1, "the old connection is forgotten")
        for _ in 0..<6 {
            now += 1
            try send(core, "w0/a/2", .heartbeat)
        }
        XCTAssertEqual(try shard(core, "prepare").state, .leased)
    }

    func testLeasesOfAnEarlierCoordinatorAreReclaimedOrGoBack() throws {
        var first: CoordinatorCore? = try makeCore(tasks: "[var_swap, if_equals]")
        try send(first!, "w0/a/1", hello("w0", "a"))
        let prepare = try XCTUnwrap(leases(in: try send(first!, "w0/a/1", .request(1))).first)
        let data = try upload(first!, "w0/a/1", Data("data".utf8))
        try send(first!, "w0/a/1", .result(ResultReport(lease: prepare.key, outputs: ["data": data], summary: "{}")))
        try send(first!, "w0/a/1", .request(1))
        try send(first!, "w1/b/1", hello("w1", "b"))
        // Only one train shard: the second worker's request stays open.
        let train = try XCTUnwrap(try first!.store.read { try $0.activeLeases() }.first).lease
        first = nil

        // A new coordinator process on the same store: w0 reclaims its lease, nobody claims the other.
        now += 1
        let second = try makeCore(tasks: "[var_swap, if_equals]")
        XCTAssertEqual(try send(second, "w0/a/1", .heartbeat), [.rehello])
        try send(second, "w0/a/1", hello("w0", "a", running: [train]))
        XCTAssertEqual(try second.store.read { try $0.activeLeases() }.map(\.lease), [train])
        for _ in 0..<12 {
            now += 1
            try send(second, "w0/a/1", .heartbeat)
        }
        XCTAssertEqual(try shard(second, train.shard).state, .leased, "the reclaimed lease stays")
        let events = try second.store.read { try $0.events(limit: 100) }.map(\.event)
        XCTAssertTrue(events.contains("lease_adopted"), "\(events)")
    }

    func testLeasesOfAnEarlierRunsLocalWorkersGoBackAtOnce() throws {
        // (A remote worker's lease waits for a reclaim: testAnUnclaimedLeaseGoesBackAfterTheReclaimGrace.)
        var first: CoordinatorCore? = try makeCore()
        let local = LocalWorkerName.prefix + "41-0-7"
        try send(first!, "\(local)/a/1", hello(local, "a"), .request(1))
        XCTAssertEqual(try first!.store.read { try $0.activeLeases() }.map(\.owner), [local])
        first = nil

        // The local worker stopped with its coordinator: its lease is free before any worker asks.
        now += 1
        let second = try makeCore()
        XCTAssertEqual(try shard(second, "prepare").state, .pending)
        XCTAssertEqual(try shard(second, "prepare").maxAttempts, 4, "an interruption uses no attempt")
        try send(second, "w2/c/1", hello("w2", "c"))
        XCTAssertEqual(leases(in: try send(second, "w2/c/1", .request(1))).map(\.shard), ["prepare"])
    }

    func testAnUnclaimedLeaseGoesBackAfterTheReclaimGrace() throws {
        var first: CoordinatorCore? = try makeCore()
        try send(first!, "w0/a/1", hello("w0", "a"), .request(1))
        first = nil
        let second = try makeCore()
        try send(second, "w1/b/1", hello("w1", "b"))
        for _ in 0..<19 {
            now += 0.5
            try send(second, "w1/b/1", .heartbeat)
        }
        XCTAssertEqual(try shard(second, "prepare").state, .leased, "still within the grace (2 × 5 s)")
        for _ in 0..<2 {
            now += 0.5
            try send(second, "w1/b/1", .heartbeat)
        }
        XCTAssertEqual(try shard(second, "prepare").state, .pending)
        XCTAssertTrue(try shard(second, "prepare").error?.contains("no worker reclaimed") ?? false)
    }

    func testAPermanentFailureFailsAtOnceAndATransientOneRetries() throws {
        let core = try makeCore(tasks: "[var_swap, if_equals]")
        try send(core, "w0/a/1", hello("w0", "a"))
        var prepare = try XCTUnwrap(leases(in: try send(core, "w0/a/1", .request(1))).first)
        try send(core, "w0/a/1", .failure(FailureReport(lease: prepare.key, error: "killed by signal 9", logTail: nil)))
        XCTAssertEqual(try shard(core, "prepare").state, .pending, "a killed child is retried")
        now += 2.5
        prepare = try XCTUnwrap(leases(in: try send(core, "w0/a/1", .request(1))).first)
        XCTAssertEqual(prepare.attempt, 2)
        try send(core, "w0/a/1", .failure(FailureReport(lease: prepare.key, error: "invalid configuration", logTail: "tail",
                                                         permanent: true)))
        let failed = try shard(core, "prepare")
        XCTAssertEqual(failed.state, .failed)
        XCTAssertEqual(failed.attempts, 2, "no attempt after the permanent failure")
        XCTAssertEqual(failed.error, "invalid configuration")
        XCTAssertTrue(try core.store.read { try $0.counts() }.finished)
    }

    func testARequestStandsUntilShardsAreReadyForIt() throws {
        let core = try makeCore(tasks: "[var_swap, if_equals]")
        try send(core, "w0/a/1", hello("w0", "a", slots: 3))
        let prepare = try XCTUnwrap(leases(in: try send(core, "w0/a/1", .request(3))).first)
        XCTAssertEqual(prepare.shard, "prepare")
        XCTAssertTrue(leases(in: try send(core, "w0/a/1", .heartbeat)).isEmpty, "nothing else can run yet")
        // Its other two slots stay asked for: the train shard prepare unblocks goes to it unasked.
        let data = try upload(core, "w0/a/1", Data("data".utf8))
        let replies = try send(core, "w0/a/1", .result(ResultReport(lease: prepare.key, outputs: ["data": data], summary: "{}")))
        XCTAssertEqual(leases(in: replies).map(\.kind), [ShardKindName.train])
        // Requests add up only to the slots the worker has free (3, one of them leased).
        try send(core, "w0/a/1", .request(5))
        try send(core, "w1/b/1", hello("w1", "b"), .request(1))
        XCTAssertEqual(try core.store.read { try $0.activeLeases() }.count, 1)
    }

    // MARK: uploads

    private func openDescriptors() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.count ?? 0
    }

    private func incomingFiles() -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: RunDirectory(directory).artifacts
            .appendingPathComponent("incoming").path)) ?? []
    }

    func testUploadsThatNeverFinishLeaveNoDescriptorsAndNoFiles() throws {
        let core = try makeCore()
        let descriptors = openDescriptors()
        // 300 uploads started by a peer that never said hello.
        for index in 0..<300 {
            let hash = SHA256.hex(Data("stranger \(index)".utf8))
            try send(core, "stranger", .put(ChunkHeader(hash: hash, size: 1000, offset: 0, kind: "data"), Data(count: 10)))
        }
        XCTAssertEqual(incomingFiles(), [])
        XCTAssertEqual(core.uploadsInProgress, 0)
        // And 300 by a worker, which may have a few at once, each abandoned after a silence.
        try send(core, "w0/a/1", hello("w0", "a"))
        for index in 0..<300 {
            let hash = SHA256.hex(Data("worker \(index)".utf8))
            try send(core, "w0/a/1", .put(ChunkHeader(hash: hash, size: 1000, offset: 0, kind: "data"), Data(count: 10)))
        }
        XCTAssertLessThanOrEqual(incomingFiles().count, CoordinatorTiming.maxUploadsPerWorker)
        XCTAssertLessThanOrEqual(openDescriptors(), descriptors + 2, "no descriptor is held per upload")
        for _ in 0..<6 {
            now += 1
            try send(core, "w0/a/1", .heartbeat)
        }
        XCTAssertEqual(incomingFiles(), [], "abandoned uploads are deleted")
        XCTAssertEqual(core.uploadsInProgress, 0)
        // A complete upload still goes through.
        let data = Data(repeating: 7, count: 3000)
        let hash = SHA256.hex(data)
        try send(core, "w0/a/1", .put(ChunkHeader(hash: hash, size: 3000, offset: 0, kind: "data"), data.prefix(1000)))
        try send(core, "w0/a/1", .put(ChunkHeader(hash: hash, size: 3000, offset: 1000, kind: "data"), data.dropFirst(1000)))
        XCTAssertTrue(try core.store.read { try $0.hasArtifact(hash) })
        XCTAssertEqual(incomingFiles(), [])
    }

    func testAnUploadOfAnEarlierCoordinatorIsCleanedAtStart() throws {
        _ = try makeCore()
        let stale = RunDirectory(directory).artifacts.appendingPathComponent("incoming/\(String(repeating: "a", count: 64)).upload")
        try Data("half".utf8).write(to: stale)
        _ = try makeCore()
        XCTAssertEqual(incomingFiles(), [])
    }

    // MARK: logs

    func testDroppedFramesAreCountedAndTheirWarningsThrottled() throws {
        let core = try makeCore()
        var generator = SystemRandomNumberGenerator()
        for second in 0..<30 {
            now += 1
            let batch = (0..<400).map { _ in
                (identity: Data("noise".utf8), frames: [Data((0..<20).map { _ in UInt8.random(in: 0...255, using: &generator) })])
            }
            _ = try core.process(batch, now: now)
            _ = second
        }
        XCTAssertEqual(core.droppedFrames, 12_000)
        let warnings = logs.text.split(separator: "\n").map(String.init).filter { $0.hasPrefix("warning") }
        XCTAssertLessThanOrEqual(warnings.count, 3 * (CoordinatorTiming.dropLogBurst + 1), warnings.joined(separator: "\n"))
        XCTAssertTrue(warnings.contains { $0.contains("more malformed or unexpected frames") }, warnings.joined(separator: "\n"))
    }
}
