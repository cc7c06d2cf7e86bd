import Foundation
import XCTest
import Circuits
import SparseGPT
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
        let trainingCurve = try TrainingCurve.parse(String(contentsOf: XCTUnwrap(whole.outputs["training_curve"]), encoding: .utf8),
                                                    source: "training_curve")
        XCTAssertEqual(trainingCurve.rows.map(\.step), Array(1...12), "12 steps, each reported")
        XCTAssertEqual(trainingCurve.rows.filter { $0.heldOutLoss != nil }.map(\.step), Array(1...12),
                       "held-out loss every max(1, 12 / 20) steps")
        XCTAssertTrue(trainingCurve.rows.allSatisfy { $0.trainLoss.isFinite && $0.density > 0 && $0.density <= 1 })
        let loss = try XCTUnwrap(whole.summary["pretrain_loss"])
        XCTAssertEqual(trainingCurve.rows.last?.heldOutLoss ?? 0, loss, accuracy: 1e-6, "the last evaluation is the pretraining loss")
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
        XCTAssertEqual(Set(pruned.outputs.keys), ["curve", "circuit", "analysis"])
        XCTAssertEqual(pruneProgress.last, 1, "the last report marks the end")
        let curve = try JSONSerialization.jsonObject(with: Data(contentsOf: pruned.outputs["curve"]!)) as! [String: Any]
        XCTAssertEqual(curve["task"] as? String, "var_swap")
        XCTAssertEqual((curve["points"] as? [Any])?.count, 2)
        XCTAssertNotNil(pruned.summary["full_loss"])
        let circuit = try JSONSerialization.jsonObject(with: Data(contentsOf: pruned.outputs["circuit"]!)) as! [String: Any]
        XCTAssertEqual(circuit["model"] as? String, prune.params.point?.name, "named by the model point, not a path")
        XCTAssertEqual((circuit["candidate_texts"] as? [String])?.count, (circuit["candidate_tokens"] as? [Int])?.count)
        XCTAssertNotNil(circuit["status"])
        XCTAssertEqual(pruned.summary["collapsed"] == 1, circuit["status"] as? String == "collapsed")
        let analysis = try JSONDecoder().decode(CircuitAnalysis.self, from: Data(contentsOf: pruned.outputs["analysis"]!))
        XCTAssertEqual(analysis.task, "var_swap")
        XCTAssertEqual(analysis.nodes.count, Int(pruned.summary["nodes"] ?? 0), "one analysis per circuit node")
        XCTAssertEqual(analysis.pairs.count, 4, "every test pair shown when there are fewer than six")
        XCTAssertTrue(analysis.nodes.allSatisfy { $0.ablatedLoss.isFinite && !$0.top.isEmpty })
        if pruned.summary["reachable"] == 1 {
            XCTAssertGreaterThan(pruned.summary["edges"] ?? 0, 0)
            XCTAssertEqual(pruned.summary["necessity_loss"], (circuit["necessity_loss"] as? Double).map { Double(Float($0)) })
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

    /// The random-init control: the initialisation projected to the sparse density, no step taken.
    func testTheRandomInitControlIsTheInitialisationAtTheModelsDensity() throws {
        let spec = try SweepSpec.parse("""
            grid: {density: [0.5], d_model: [32], task: [var_swap]}
            data: {train_sequences: 200, held_out_sequences: 8, train_pairs: 8, test_pairs: 4}
            model: {context: 32}
            train: {steps: 12, batch_size: 2}
            """, file: "tiny.yaml")
        let shards = plan(spec)
        let control = try XCTUnwrap(shards.first { $0.params.point?.isRandomInit == true })
        XCTAssertEqual(control.kind, "train")
        let prepare = try ShardRunner.run(job(shards[0], inputs: [:], name: "prepare")) { _ in }
        let inputs = Dictionary(uniqueKeysWithValues: prepare.outputs.map { ("prepare.\($0.key)", $0.value.path) })
        var progress: [String] = []
        let output = try ShardRunner.run(job(control, inputs: inputs, name: "control")) { progress.append($0) }
        XCTAssertEqual(output.summary["steps"], 0)
        XCTAssertEqual(progress.count, 1)
        let checkpoint = try Checkpoint.load(from: output.outputs["checkpoint"]!.path)
        XCTAssertEqual(checkpoint.step, 0, "never trained")
        let layout = ParameterLayout(checkpoint.model)
        var nonzero = 0
        for tensor in layout.tensors {
            let values = checkpoint.parameters[tensor.offset..<(tensor.offset + tensor.count)]
            let kept = values.filter { $0 != 0 }.count
            nonzero += kept
            if tensor.isMatrix && !tensor.isEmbedding {
                XCTAssertEqual(kept, Int((0.5 * Double(tensor.count)).rounded(.up)), "\(tensor.name) projected to density 0.5")
            } else if tensor.isMatrix {
                XCTAssertEqual(kept, tensor.count, "\(tensor.name): embed density min(1, 4 · 0.5) = 1")
            }
        }
        XCTAssertEqual(output.summary["nonzero_weights"], Double(nonzero))
        // Uniform over a 512-token vocabulary would be ln 512 = 6.24: an untrained model is near it.
        XCTAssertGreaterThan(try XCTUnwrap(output.summary["pretrain_loss"]), 5)
    }
}
