import Foundation
import XCTest
@testable import Sweep

/// The real prepare and train kinds, run in-process on a tiny configuration.
final class ModelShardTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("model-shards-\(UUID().uuidString)")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func job(_ shard: PlannedShard, inputs: [String: String], resume: String? = nil, resumeStep: Int? = nil,
                     name: String) -> ShardJob {
        ShardJob(shard: shard.id, attempt: 1, kind: shard.kind, params: shard.params.encoded(), inputs: inputs,
                 resume: resume, resumeStep: resumeStep, outputDirectory: directory.appendingPathComponent(name).path)
    }

    func testPrepareThenTrainResumedFromACheckpointEndsWhereAnUninterruptedRunEnds() throws {
        let spec = try SweepSpec.parse("""
            grid: {density: [0.5], d_model: [32], task: [var_swap, bracket_brace]}
            data: {train_sequences: 200, held_out_sequences: 8, train_pairs: 8, test_pairs: 4}
            model: {context: 32}
            train: {steps: 12, batch_size: 2, checkpoint_every: 0.25}
            """, file: "tiny.yaml")
        let shards = plan(spec)
        let prepare = try ShardRunner.run(job(shards[0], inputs: [:], name: "prepare")) { _ in }
        XCTAssertEqual(Set(prepare.outputs.keys), ["tokenizer", "train_tokens", "held_out_tokens", "tasks"])
        let pairs = try JSONDecoder().decode(PairsFile.self, from: Data(contentsOf: prepare.outputs["tasks"]!))
        XCTAssertEqual(pairs.tasks.map(\.task), ["var_swap", "bracket_brace"])
        XCTAssertEqual(pairs.tasks[0].train.prompts.count, 16, "8 pairs, two prompts each")
        XCTAssertEqual(pairs.tasks[0].test.cand.count, 8)
        let inputs = Dictionary(uniqueKeysWithValues: prepare.outputs.map { ("prepare.\($0.key)", $0.value.path) })

        let train = shards[1]
        var checkpoints: [(step: Int, path: String)] = []
        var progress: [Int] = []
        let whole = try ShardRunner.run(job(train, inputs: inputs, name: "whole")) { line in
            let fields = line.split(separator: " ").map(String.init)
            if fields[0] == "@checkpoint" { checkpoints.append((Int(fields[1])!, fields[2])) }
            if fields[0] == "@progress" { progress.append(Int(fields[1])!) }
        }
        XCTAssertEqual(checkpoints.map(\.step), [3, 6, 9])
        XCTAssertEqual(progress.last, 12)
        let loss = try XCTUnwrap(whole.summary["pretrain_loss"])
        XCTAssertTrue(loss.isFinite && loss > 0)

        let resumed = try ShardRunner.run(job(train, inputs: inputs, resume: checkpoints[1].path, resumeStep: 6,
                                              name: "resumed")) { _ in }
        XCTAssertEqual(resumed.summary["resumed_from_step"], 6)
        XCTAssertEqual(try SHA256.hex(fileAt: resumed.outputs["checkpoint"]!), try SHA256.hex(fileAt: whole.outputs["checkpoint"]!))
        XCTAssertEqual(resumed.summary["pretrain_loss"], loss)

        // A checkpoint of another model is refused by name.
        var other = train
        other.params.point?.density = 1.0
        XCTAssertThrowsError(try ShardRunner.run(job(other, inputs: inputs, resume: checkpoints[0].path, name: "other")) { _ in }) {
            XCTAssertTrue("\($0)".contains("belongs to another model"), "\($0)")
        }
    }
}
