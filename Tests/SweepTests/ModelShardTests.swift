import Foundation
import XCTest
import Circuits
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

    func testRegisteredKindsRunInTheShardRunner() throws {
        ShardKinds.register("echo") { context in
            context.progress(step: 1, total: 1, loss: 0.5)
            let file = context.outputDirectory.appendingPathComponent("echo.txt")
            try Data(context.job.shard.utf8).write(to: file)
            return ShardOutput(outputs: ["echo": file], summary: ["attempt": Double(context.job.attempt)])
        }
        let job = ShardJob(shard: "echo/1", attempt: 3, kind: "echo", params: ShardParams().encoded(), inputs: [:],
                           resume: nil, resumeStep: nil, outputDirectory: directory.appendingPathComponent("echo").path)
        var lines: [String] = []
        let output = try ShardRunner.run(job) { lines.append($0) }
        XCTAssertEqual(lines, ["@progress 1 1 0.5"])
        XCTAssertEqual(output.summary, ["attempt": 3])
        XCTAssertEqual(try String(contentsOf: output.outputs["echo"]!, encoding: .utf8), "echo/1")
        var unknown = job
        unknown.kind = "nonesuch"
        XCTAssertThrowsError(try ShardRunner.run(unknown) { _ in }) {
            XCTAssertTrue("\($0)".contains("unknown shard kind 'nonesuch'"), "\($0)")
        }
    }

    func testPrepareThenTrainResumedFromACheckpointEndsWhereAnUninterruptedRunEnds() throws {
        let spec = try SweepSpec.parse("""
            grid: {density: [0.5], d_model: [32], task: [var_swap, bracket_brace]}
            data: {train_sequences: 200, held_out_sequences: 8, train_pairs: 8, test_pairs: 4}
            model: {context: 32}
            train: {steps: 12, batch_size: 2, checkpoint_every: 0.25}
            prune: {steps: 20, lambdas: [0.001, 0.01], target_losses: [0.3, 0.6], headline_target: 0.6, batch_size: 8}
            """, file: "tiny.yaml")
        let shards = plan(spec)
        let prepare = try ShardRunner.run(job(shards[0], inputs: [:], name: "prepare")) { _ in }
        XCTAssertEqual(Set(prepare.outputs.keys), ["tokenizer", "train_tokens", "held_out_tokens", "tasks", "task_errors"])
        XCTAssertEqual(try TaskErrorsFile.load(prepare.outputs["task_errors"]!), [:], "every task was made")
        let pairs = try TaskPairsFile.load(prepare.outputs["tasks"]!)
        XCTAssertEqual(pairs.map(\.task).sorted(), ["bracket_brace", "var_swap"])
        XCTAssertEqual(pairs[0].train.count, 16, "8 pairs, two prompts each")
        XCTAssertEqual(pairs[0].test.pairCount, 4)
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

        // Prune one task of the trained model: a frontier document and a headline circuit.
        let prune = try XCTUnwrap(shards.first { $0.kind == "prune" && $0.params.task == "var_swap" && $0.dependencies.contains(train.id) })
        var pruneInputs = inputs
        pruneInputs["train.checkpoint"] = whole.outputs["checkpoint"]!.path
        var pruneProgress: [Int] = []
        let pruned = try ShardRunner.run(job(prune, inputs: pruneInputs, name: "prune")) { line in
            if line.hasPrefix("@progress ") { pruneProgress.append(Int(line.split(separator: " ")[1])!) }
        }
        XCTAssertEqual(Set(pruned.outputs.keys), ["curve", "circuit"])
        XCTAssertEqual(pruneProgress.last, 1, "the last report marks the end")
        let curve = try JSONSerialization.jsonObject(with: Data(contentsOf: pruned.outputs["curve"]!)) as! [String: Any]
        XCTAssertEqual(curve["task"] as? String, "var_swap")
        XCTAssertEqual((curve["points"] as? [Any])?.count, 2)
        XCTAssertNotNil(pruned.summary["full_loss"])
        if pruned.summary["reachable"] == 1 {
            XCTAssertGreaterThan(pruned.summary["edges"] ?? 0, 0)
        } else {
            XCTAssertNil(pruned.summary["edges"], "an unreachable circuit has no size")
        }

        // A checkpoint of another model is refused by name.
        var other = train
        other.params.point?.density = 1.0
        XCTAssertThrowsError(try ShardRunner.run(job(other, inputs: inputs, resume: checkpoints[0].path, name: "other")) { _ in }) {
            XCTAssertTrue("\($0)".contains("belongs to another model"), "\($0)")
        }
    }
}
