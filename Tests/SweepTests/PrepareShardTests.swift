import Foundation
import XCTest
import Circuits
import PythonCode
@testable import Sweep

/// The prepare shard on a directory of real Python code.
final class PrepareShardTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("prepare-\(UUID().uuidString)")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func prepare(corpus: String) throws -> ShardOutput {
        let spec = try SweepSpec.parse("""
            grid: {density: [1.0], d_model: [32], task: [\(knownTasks.joined(separator: ", "))]}
            data: {train_sequences: 300, held_out_sequences: 8, train_pairs: 8, test_pairs: 4}
            """, file: "real.yaml", overrides: [SweepOverride("data.corpus=\(corpus)")])
        let shard = plan(spec)[0]
        let job = ShardJob(shard: shard.id, attempt: 1, kind: shard.kind, params: shard.params.encoded(), inputs: [:],
                           resume: nil, resumeStep: nil, outputDirectory: directory.appendingPathComponent("prepare").path)
        return try ShardRunner.run(job) { _ in }
    }

    /// Issue: at the default vocabulary the standard library used to fail every task whose
    /// candidates plain BPE split.
    func testStandardLibraryPreparesEveryTaskAtTheDefaultVocabulary() throws {
        let stdlib = "/usr/lib/python3.11"
        guard FileManager.default.fileExists(atPath: stdlib + "/os.py") else { throw XCTSkip("\(stdlib) not present") }
        let output = try prepare(corpus: stdlib)
        XCTAssertEqual(output.summary["vocab_size"], 512)
        XCTAssertGreaterThan(output.summary["reserved_candidate_pieces"] ?? 0, 0)
        XCTAssertEqual(output.summary["train_tokens"], 300 * 65)
        let pairs = try TaskPairsFile.load(output.outputs["tasks"]!)
        XCTAssertEqual(Set(pairs.map(\.task)), Set(knownTasks))
        let tokenizer = try BPETokenizer.load(from: output.outputs["tokenizer"]!.path)
        XCTAssertTrue(tokenizer.servesTasks)
    }

    func testCorpusErrorsAreTypedAndNotRetried() throws {
        let empty = directory.appendingPathComponent("empty").path
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        XCTAssertThrowsError(try prepare(corpus: empty)) { error in
            XCTAssertEqual(error as? CorpusError, .emptyDirectory(empty))
            XCTAssertTrue(ShardRunner.isDeterministic(error), "not retried")
        }
        let tiny = directory.appendingPathComponent("tiny").path
        try FileManager.default.createDirectory(atPath: tiny, withIntermediateDirectories: true)
        for i in 0..<200 { try "x = \(i)\n".write(toFile: "\(tiny)/m\(i).py", atomically: true, encoding: .utf8) }
        XCTAssertThrowsError(try prepare(corpus: tiny)) { error in
            guard case .tooFewTokens(tiny, _, _, 65)? = error as? CorpusError else { return XCTFail("\(error)") }
            XCTAssertTrue(ShardRunner.isDeterministic(error), "not retried")
        }
    }
}
