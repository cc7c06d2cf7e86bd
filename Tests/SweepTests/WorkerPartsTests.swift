import Foundation
import XCTest
import Circuits
import PythonCode
import SparseGPT
@testable import Sweep

/// The worker's parts on their own: the child's line protocol, the artifact store, downloads,
/// and how a child's error becomes its exit status.
final class WorkerPartsTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("worker-parts-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    func testChildLinesRoundTripAndOtherLinesAreLog() {
        let lines: [ChildLine] = [.progress(step: 3, total: 10, loss: 2.5), .progress(step: 0, total: 1, loss: nil),
                                  .checkpoint(step: 7, path: "/tmp/a dir/checkpoint 7.bin")]
        for line in lines {
            XCTAssertEqual(ChildLine.parse(line.text), line, line.text)
            XCTAssertTrue(ChildLine.isProtocolLine(line.text))
        }
        XCTAssertEqual(ChildLine.parse("@progress 1 2 -"), .progress(step: 1, total: 2, loss: nil))
        for log in ["step 3 loss 2.5", "", "@", "@ progress", "error: something"] {
            XCTAssertNil(ChildLine.parse(log), log)
            XCTAssertFalse(ChildLine.isProtocolLine(log), log)
        }
        // A tag this side does not know (a newer child's) is neither acted on nor logged.
        XCTAssertNil(ChildLine.parse("@curve 3 0.5"))
        XCTAssertTrue(ChildLine.isProtocolLine("@curve 3 0.5"))
        XCTAssertNil(ChildLine.parse("@progress x 2 1.0"))
    }

    func testTheArtifactStoreTakesOnlyFilesThatHashToTheirName() throws {
        let store = try ArtifactStore(directory: directory.appendingPathComponent("cache"))
        let data = Data("weights".utf8)
        let hash = SHA256.hex(data)
        let partial = try store.partialFile(for: hash, tag: "t")
        try store.append(data.prefix(3), to: partial)
        try store.append(data.dropFirst(3), to: partial)
        XCTAssertEqual(try store.commit(partial, as: hash), hash)
        XCTAssertTrue(store.contains(hash))
        XCTAssertEqual(try Data(contentsOf: store.url(hash)), data)

        let wrong = String(repeating: "0", count: 64)
        let corrupt = try store.partialFile(for: wrong, tag: "t")
        try store.append(data, to: corrupt)
        XCTAssertEqual(try store.commit(corrupt, as: wrong), hash, "says what it really hashes to")
        XCTAssertFalse(store.contains(wrong))
        XCTAssertFalse(FileManager.default.fileExists(atPath: corrupt.path), "a corrupt file is deleted")

        let output = directory.appendingPathComponent("output")
        try Data("curve".utf8).write(to: output)
        let adopted = try store.adopt(output)
        XCTAssertEqual(adopted, SHA256.hex(Data("curve".utf8)))
        XCTAssertFalse(FileManager.default.fileExists(atPath: output.path), "moved, not copied")
        XCTAssertTrue(store.contains(adopted))
    }

    func testDownloadsAskForTheNextChunkUntilComplete() throws {
        let cache = try ArtifactStore(directory: directory.appendingPathComponent("cache"))
        var downloads = Downloads(cache: cache)
        let data = Data((0..<10).map { UInt8($0) })
        let hash = SHA256.hex(data)
        let first = try XCTUnwrap(try downloads.start(ArtifactRef(hash: hash, size: 10), now: 0))
        XCTAssertEqual(first.offset, 0)
        guard case .next(let second) = try downloads.receive(ChunkHeader(hash: hash, size: 10, offset: 0, kind: nil),
                                                             data.prefix(4), now: 1) else { return XCTFail("expected a request") }
        XCTAssertEqual(second.offset, 4)
        guard case .ignored = try downloads.receive(ChunkHeader(hash: hash, size: 10, offset: 0, kind: nil), data.prefix(4), now: 1)
        else { return XCTFail("a repeated chunk is ignored") }
        XCTAssertEqual(downloads.resumeRequests(stalledFor: 5, now: 3).map(\.offset), [])
        XCTAssertEqual(downloads.resumeRequests(stalledFor: 5, now: 7).map(\.offset), [4], "a stalled download asks again")
        guard case .complete = try downloads.receive(ChunkHeader(hash: hash, size: 10, offset: 4, kind: nil), data.dropFirst(4), now: 8)
        else { return XCTFail("expected completion") }
        XCTAssertEqual(try downloads.finish(hash), hash)
        XCTAssertTrue(cache.contains(hash))
    }

    func testAChildsErrorBecomesAnExitStatusThatSaysWhetherToRetry() throws {
        let transient: [Error] = [SweepError("cannot write: No space left on device"), CircuitError.model("diverged"),
                                  SparseGPTError.checkpoint(file: "x", problem: "truncated"), CocoaError(.fileReadNoSuchFile)]
        let permanent: [Error] = [PermanentShardError("bad params"), TaskError.unknownTask("x", known: []),
                                  TaskError.candidatesCoincide(task: "t", target: "a", alt: "b", token: " "),
                                  TokenizerError.invalidVocabularySize(3), CircuitError.invalidPairs("empty"),
                                  CircuitError.invalidSettings("no lambdas"), SparseGPTError.invalidConfig("d_model")]
        for error in transient { XCTAssertFalse(ShardRunner.isDeterministic(error), "\(error)") }
        for error in permanent { XCTAssertTrue(ShardRunner.isDeterministic(error), "\(error)") }

        ShardKinds.register("fails-with-task-error") { _ in
            throw TaskError.candidatesCoincide(task: "enumerate_range", target: " enumerate", alt: " range", token: " ")
        }
        ShardKinds.register("fails-with-io-error") { _ in throw SweepError("disk on fire") }
        for (kind, status) in [("fails-with-task-error", ShardExitStatus.failedPermanently),
                               ("fails-with-io-error", ShardExitStatus.failed)] {
            let job = ShardJob(shard: "\(kind)/1", attempt: 1, kind: kind, params: ShardParams().encoded(), inputs: [:],
                               resume: nil, resumeStep: nil, outputDirectory: directory.appendingPathComponent(kind).path)
            let file = directory.appendingPathComponent("\(kind).json")
            try JSONEncoder().encode(job).write(to: file)
            XCTAssertEqual(ShardRunner.main(jobFile: file), status, kind)
        }
    }
}
