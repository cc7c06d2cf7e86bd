import Foundation
import GRDB
import XCTest
@testable import Sweep
import ZeroMQ

/// Random and mutated frames, reproducible from the seed printed on failure.
struct FrameFuzzer {
    private var state: UInt64
    let seeds: [[Data]]

    init(seed: UInt64, seeds: [[Data]]) {
        state = seed
        self.seeds = seeds
    }

    /// SplitMix64: small and good enough to pick mutations.
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(1, bound))) }
    mutating func bytes(_ count: Int) -> Data { Data((0..<count).map { _ in UInt8(truncatingIfNeeded: next()) }) }

    /// Numbers that break careless arithmetic and allocation.
    private static let extremes = ["9223372036854775807", "-9223372036854775808", "9223372036854775806",
                                   "99999999999999999999999", "-1", "0", "1e308", "-1e308", "4294967296",
                                   "1.5", "null", "\"7\"", "[]", "{}", "true"]

    /// One message: a valid one, mutated once or a few times, or plain noise.
    mutating func message() -> [Data] {
        if below(10) == 0 { return [bytes(below(300))] }
        var frames = seeds[below(seeds.count)]
        for _ in 0...below(3) { frames = mutate(frames) }
        return frames.isEmpty ? [Data()] : frames
    }

    private mutating func mutate(_ input: [Data]) -> [Data] {
        var frames = input
        let index = below(frames.count)
        var frame = frames.isEmpty ? Data() : frames[index]
        switch below(14) {
        case 0 where !frame.isEmpty:  // bit flips
            for _ in 0...below(4) {
                let at = below(frame.count)
                frame[frame.startIndex + at] ^= UInt8(1 << below(8))
            }
        case 1 where !frame.isEmpty:  // random bytes
            for _ in 0...below(4) { frame[frame.startIndex + below(frame.count)] = UInt8(truncatingIfNeeded: next()) }
        case 2:  // truncation
            frame = frame.prefix(below(frame.count + 1))
        case 3:  // extension
            frame.append(bytes(1 + below(64)))
        case 4:  // wrong version
            if frame.count > 3 { frame[frame.startIndex + 3] = UInt8(truncatingIfNeeded: next()) }
        case 5:  // wrong type
            if frame.count > 4 { frame[frame.startIndex + 4] = [0, 10, 19, 28, 255, UInt8(below(30))][below(6)] }
        case 6:  // an extreme number for the first number or value in the JSON body
            var text = String(decoding: frame, as: UTF8.self)
            if let range = text.range(of: #"-?[0-9]+(\.[0-9]+)?|"[^"]*"|\[\]|\{\}|null|true|false"#, options: .regularExpression,
                                      range: text.index(text.startIndex, offsetBy: min(5, text.count))..<text.endIndex) {
                text.replaceSubrange(range, with: FrameFuzzer.extremes[below(FrameFuzzer.extremes.count)])
                frame = Data(text.utf8)
            }
        case 7:  // an empty frame
            frame = Data()
        case 8:  // an extra frame
            frames.insert(bytes(below(40)), at: below(frames.count + 1))
        case 9 where frames.count > 1:  // a frame less
            frames.remove(at: index)
            return frames
        case 10:  // a long frame, now and then a huge one
            frame.append(Data(repeating: UInt8(ascii: "9"), count: below(4) == 0 ? 1 << 20 : below(4096)))
        case 11:  // deep nesting
            let depth = 10 + below(20_000)
            frame = frame.prefix(5) + Data(repeating: UInt8(ascii: "["), count: depth) + Data(repeating: UInt8(ascii: "]"), count: depth)
        case 12:  // duplicate a piece in place
            if frame.count > 2 {
                let start = below(frame.count), length = below(frame.count - start)
                frame.insert(contentsOf: frame[frame.startIndex + start..<frame.startIndex + start + length], at: frame.startIndex + start)
            }
        default:  // the body of another message
            let other = seeds[below(seeds.count)][0]
            frame = frame.prefix(5) + other.dropFirst(5)
        }
        if frames.isEmpty { return [frame] }
        frames[index] = frame
        return frames
    }
}

final class ProtocolFuzzTests: ClusterTestCase {
    private static let hash = String(repeating: "0f", count: 32)

    /// Worker messages that a connection which never said hello may send, and
    /// coordinator messages sent the wrong way. No hello or request: garbage must not
    /// become a worker, so every change of the store is the real worker's.
    private static func coordinatorSeeds() -> [[Data]] {
        let key = LeaseKey(shard: "train/d1-w64-a0.25-s0", attempt: 1)
        let lease = Lease(shard: key.shard, attempt: 1, kind: "train", params: "{}",
                          inputs: ["prepare.data": ArtifactRef(hash: hash, size: 10)], resume: nil, resumeStep: nil)
        let messages: [Message] = [
            .heartbeat,
            .progress(ProgressReport(lease: key, step: 5, total: 10, loss: 2.5)),
            .result(ResultReport(lease: key, outputs: ["checkpoint": hash], summary: "{\"x\":1}")),
            .failure(FailureReport(lease: key, error: "boom", logTail: "line")),
            .checkpoint(CheckpointReport(lease: key, hash: hash, step: 4)),
            // The data does not hash to the header's hash, so a complete upload is discarded.
            .put(ChunkHeader(hash: hash, size: 3, offset: 0, kind: "data"), Data([1, 2, 3])),
            .put(ChunkHeader(hash: hash, size: 6, offset: 3, kind: "data"), Data([4, 5, 6])),
            .get(ChunkRequest(hash: hash, offset: 0, length: 100)),
            .welcome(Welcome(heartbeatSeconds: 1, workerDeadSeconds: 5)), .leases([lease]), .ack(key), .cancel(key),
            .chunk(ChunkHeader(hash: hash, size: 3, offset: 1, kind: nil), Data([2, 3])),
            .missing(key, [hash]), .rehello, .refused("no"),
        ]
        return messages.map { $0.encoded() }
    }

    private static func allSeeds() -> [[Data]] {
        let key = LeaseKey(shard: "prune/d1-w64-a0.25-s0/var_swap", attempt: 3)
        return coordinatorSeeds() + [
            Message.hello(Hello(worker: "w", incarnation: "test", slots: 2, running: [key])).encoded(),
            Message.request(3).encoded(),
        ]
    }

    /// The suite's budget times CIRCUITRY_FUZZ_SCALE, for longer campaigns by hand.
    private static var scale: Int {
        max(1, ProcessInfo.processInfo.environment["CIRCUITRY_FUZZ_SCALE"].flatMap(Int.init) ?? 1)
    }

    private static var seed: UInt64 {
        ProcessInfo.processInfo.environment["CIRCUITRY_FUZZ_SEED"].flatMap(UInt64.init) ?? UInt64(Date().timeIntervalSince1970 * 1000)
    }

    /// The decoder returns a message or a ProtocolError for anything, and what it
    /// accepts encodes back to the same message.
    func testDecoderNeverTrapsOnRandomAndMutatedFrames() {
        let seed = ProtocolFuzzTests.seed
        var fuzzer = FrameFuzzer(seed: seed, seeds: ProtocolFuzzTests.allSeeds())
        var accepted = 0, refused = 0
        for _ in 0..<6_000 * ProtocolFuzzTests.scale {
            let frames = fuzzer.message()
            do {
                let message = try Message.decode(frames)
                accepted += 1
                XCTAssertEqual(try Message.decode(message.encoded()), message, "seed \(seed)")
            } catch is ProtocolError {
                refused += 1
            } catch {
                XCTFail("seed \(seed): \(error) is not a ProtocolError")
            }
        }
        print("decoded \(accepted) fuzzed messages, refused \(refused) (seed \(seed))")
        // Both sides of the decoder were exercised.
        XCTAssertGreaterThan(accepted, 100, "seed \(seed)")
        XCTAssertGreaterThan(refused, 1_000, "seed \(seed)")
    }

    func testChunkArithmeticCannotOverflow() {
        func put(offset: Int, size: Int) -> [Data] {
            Message.put(ChunkHeader(hash: ProtocolFuzzTests.hash, size: size, offset: offset, kind: nil), Data([1, 2, 3])).encoded()
        }
        for (offset, size) in [(Int.max, Int.max), (Int.max - 1, Int.max), (Int.max, 0), (-1, 5), (Int.min, 3), (0, Int.min)] {
            XCTAssertThrowsError(try Message.decode(put(offset: offset, size: size)), "offset \(offset), size \(size)")
        }
        XCTAssertNoThrow(try Message.decode(put(offset: Int.max - 3, size: Int.max)))
    }

    // MARK: against a running coordinator

    /// Everything a garbage frame could change, in comparable form.
    private func storeDigest() throws -> [String] {
        try store().read { tx in
            var rows = try Row.fetchAll(tx.db, sql: """
                SELECT id, state, attempts, lease_owner, lease_attempt, progress_step, last_error, resume_hash FROM shards ORDER BY seq
                """).map { $0.description }
            for table in ["attempts", "results", "outputs", "artifacts", "dependencies"] {
                rows.append("\(table): \(try Int.fetchOne(tx.db, sql: "SELECT count(*) FROM \(table)")!)")
            }
            // The probes' own hellos are the only events the fuzzing may cause.
            rows += try tx.events(limit: 100_000).filter { !($0.detail ?? "").hasPrefix(ProtocolFuzzTests.probe) }
                .map { "\($0.event) \($0.shard ?? "") \($0.detail ?? "")" }
            return rows
        }
    }

    /// The name under which each fuzzing connection says hello at its end.
    private static let probe = "fuzz-probe-"

    /// Sends `count` fuzzed messages over a few connections, as fast as the coordinator takes them.
    /// Each connection ends with a hello: its welcome shows that everything before it was handled.
    private func fuzz(_ fuzzer: inout FrameFuzzer, count: Int, port: Int, coordinator: Process) throws {
        let context = try Context()
        let dealers = try (0..<4).map { _ -> Socket in
            let dealer = try context.socket(.dealer)
            try dealer.setLinger(0)
            try dealer.setSendTimeout(5_000)
            try dealer.connect("tcp://127.0.0.1:\(port)")
            return dealer
        }
        for index in 0..<count {
            let dealer = dealers[index % dealers.count]
            XCTAssertTrue(try dealer.send(fuzzer.message()), "send \(index) timed out: is the coordinator stuck?")
            // Answers (rehello, refused, chunks) are read and dropped, so no queue fills up.
            while try dealer.receive(dontWait: true) != nil {}
            if index % 250 == 0 { XCTAssertTrue(coordinator.isRunning, "coordinator died after \(index) messages") }
        }
        var welcomed = Set<Int>()
        for (index, dealer) in dealers.enumerated() {
            try dealer.send(Message.hello(Hello(worker: "\(ProtocolFuzzTests.probe)\(index)", incarnation: "test", slots: 1, running: [])).encoded())
        }
        let deadline = Date().addingTimeInterval(60)
        while welcomed.count < dealers.count && Date() < deadline && coordinator.isRunning {
            _ = try poll(dealers, timeout: 100)
            for (index, dealer) in dealers.enumerated() {
                while let frames = try dealer.receive(dontWait: true) {
                    if case .welcome = try? Message.decode(frames) { welcomed.insert(index) }
                }
            }
        }
        XCTAssertEqual(welcomed.count, dealers.count, "the coordinator handled every connection's messages")
        for dealer in dealers { dealer.close() }
    }

    func testCoordinatorSurvivesFuzzedFramesAndTheStoreHoldsOnlyTheSweep() throws {
        let seed = ProtocolFuzzTests.seed
        var fuzzer = FrameFuzzer(seed: seed, seeds: ProtocolFuzzTests.coordinatorSeeds())
        let port = try freePort()
        let coordinator = try spawn("coordinator", ["coordinator", try sweepFile(tasks: ["var_swap", "if_equals"]).path,
                                                    "--bind", "tcp://127.0.0.1:\(port)", "--run-dir", runDirectory.path])
        waitUntil("the coordinator listens") { log("coordinator").contains("coordinator on ") }
        let before = try storeDigest()

        try fuzz(&fuzzer, count: 2_500 * ProtocolFuzzTests.scale, port: port, coordinator: coordinator)
        XCTAssertTrue(coordinator.isRunning, "seed \(seed)")
        XCTAssertEqual(try storeDigest(), before, "seed \(seed): garbage changed the store")

        // A real worker still gets the sweep done, with more garbage arriving meanwhile.
        try spawn("w0", workerArguments("w0", connect: "tcp://127.0.0.1:\(port)", slots: 2))
        try fuzz(&fuzzer, count: 500, port: port, coordinator: coordinator)
        waitUntil("the sweep finished", finished)
        let snapshot = try XCTUnwrap(snapshot())
        XCTAssertTrue(snapshot.shards.allSatisfy { $0.state == .done && $0.attempts == 1 && $0.worker == nil },
                      "seed \(seed): " + StatusReport.table(snapshot))
        try store().read { tx in
            let events = try tx.events(limit: 100_000)
            XCTAssertEqual(try tx.resultCount(), snapshot.shards.count)
            let attemptsByOthers = try Int.fetchOne(tx.db, sql: "SELECT count(*) FROM attempts WHERE worker != 'w0'")
            XCTAssertEqual(attemptsByOthers, 0, "seed \(seed)")
            // Every artifact is an output or a checkpoint of the sweep; none came from garbage.
            let stray = try String.fetchAll(tx.db, sql: """
                SELECT hash FROM artifacts WHERE hash NOT IN (SELECT hash FROM outputs) AND kind != 'checkpoint'
                """)
            XCTAssertEqual(stray, [], "seed \(seed)")
            let checkpoints = try Int.fetchOne(tx.db, sql: "SELECT count(*) FROM artifacts WHERE kind = 'checkpoint'")!
            XCTAssertLessThanOrEqual(checkpoints, events.filter { $0.event == "checkpoint" }.count + snapshot.shards.count)
            XCTAssertEqual(events.filter { $0.event == "done" }.count, snapshot.shards.count)
            XCTAssertEqual(Set(events.filter { $0.shard == nil && !($0.detail ?? "").hasPrefix(ProtocolFuzzTests.probe) }.map(\.event)),
                           ["sweep_created", "coordinator_started", "worker_joined"])
            XCTAssertTrue(events.filter { $0.event == "worker_joined" }.allSatisfy {
                ($0.detail ?? "").hasPrefix("w0 ") || ($0.detail ?? "").hasPrefix(ProtocolFuzzTests.probe)
            })
        }
        let registered = Set(try store().read { try String.fetchAll($0.db, sql: "SELECT hash FROM artifacts") })
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: runDirectory.appendingPathComponent("artifacts").path))
            .subtracting(["incoming"])
        XCTAssertEqual(files, registered, "artifact files are exactly the registered artifacts")
        for hash in files {
            XCTAssertEqual(try SHA256.hex(fileAt: runDirectory.appendingPathComponent("artifacts/\(hash)")), hash)
        }

        waitUntil("the coordinator exited", timeout: 10) { !coordinator.isRunning }
        XCTAssertEqual(coordinator.terminationStatus, 0)
    }
}
