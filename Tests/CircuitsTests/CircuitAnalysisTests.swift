import Foundation
import SparseGPT
import XCTest
@testable import Circuits

/// `CircuitAnalysis` against direct measurements on a tiny trained model.
final class CircuitAnalysisTests: XCTestCase {
    func testAnalysisMatchesDirectAblationsAndPerPositionValues() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("circuit-analysis-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = ModelConfig(vocab: 16, context: 12, dModel: 16, nLayer: 1, afrac: 0.5)
        let task = try OpenerTask(vocab: 16, context: 12)
        let stream = try TokenWindows(tokens: task.corpus(sequences: 256, seed: 1), length: 12, vocab: 16)
        let trainer = try Trainer(model: GPT(config: config, seed: 3), config: TrainingConfig(density: 1, steps: 40, batch: 16, seed: 3))
        for step in 0..<40 {
            let batch = stream.batch(step: step, seed: 3, size: 16)
            try trainer.step(inputs: batch.inputs, targets: batch.targets, batch: 16, length: 12)
        }
        let modelPath = directory.appendingPathComponent("model.safetensors").path
        try Checkpoint(trainer: trainer).save(to: modelPath)
        let data = TaskData(task: "opener", train: try task.pairs(count: 16, seed: 5), test: try task.pairs(count: 8, seed: 6))
        let heldOut = task.corpus(sequences: 16, seed: 7)

        let session = try PruneSession(modelPath: modelPath)
        try session.computeMeans(heldOut: heldOut, windows: 8)
        // A circuit of every fifth node of each location (the analysis reads only its kept nodes).
        let locations = session.layout.locations.map { loc in
            ["name": loc.name, "size": loc.size,
             "kept": stride(from: loc.name.hasSuffix("q") ? 1 : 0, to: loc.size, by: 5).map { ["index": $0, "mean": 0] }] as [String: Any]
        }
        let document: [String: Any] = ["task": "opener", "target": 0.5, "reachable": true, "full_loss": 0.1, "total_nodes": session.layout.count,
                                       "candidate_tokens": data.test.candidateTokens, "locations": locations]
        let circuit = try JSONDecoder().decode(CircuitDocument.self, from: JSONSerialization.data(withJSONObject: document))
        var settings = CircuitAnalysisSettings()
        settings.heldOutWindows = 5
        settings.topSnippets = 2
        settings.bottomSnippets = 1
        settings.tokensBefore = 3
        settings.tokensAfter = 1
        settings.pairs = 6
        let analysis = try CircuitAnalysis.analyse(circuit: circuit, session: session, data: data, heldOut: heldOut,
                                                   settings: settings) { "t\($0)" }
        let kept = circuit.locations!.flatMap { loc in loc.kept.map { (loc.name, $0.index) } }
        XCTAssertGreaterThan(kept.count, 1)
        XCTAssertEqual(analysis.nodes.map { "\($0.location):\($0.index)" }, kept.map { "\($0.0):\($0.1)" })
        XCTAssertEqual(analysis.pairsMeasured, 6)
        XCTAssertEqual(analysis.pairs.count, 6)
        XCTAssertEqual(analysis.pairs[0].answerA, "t\(data.test.candidates[0])")
        XCTAssertEqual(analysis.heldOutWindows, 5)

        // The circuit's loss and one node's ablation effect, measured directly.
        let layout = session.layout
        var mask = [Float](repeating: 0, count: layout.count)
        for (name, index) in kept { mask[layout.location(named: name)!.offset + index] = 1 }
        let pairs = data.test.selecting(pairs: Array(0..<6))
        let direct = try session.model.taskLoss(pairs, masks: mask, means: session.means!, maskGradient: false).loss
        XCTAssertEqual(analysis.circuitLoss, direct, accuracy: 1e-6)
        let probe = kept.count / 2
        var without = mask
        without[layout.location(named: kept[probe].0)!.offset + kept[probe].1] = 0
        let removed = try session.model.taskLoss(pairs, masks: without, means: session.means!, maskGradient: false).loss
        XCTAssertEqual(analysis.nodes[probe].ablatedLoss, removed, accuracy: 1e-6)

        // The top snippet's value is the node's largest over the windows' positions, read position
        // by position: a causal model's value at position t is the last row of a forward of t + 1 tokens.
        let node = layout.location(named: kept[probe].0)!.offset + kept[probe].1
        let windows = try TokenWindows(tokens: heldOut, length: 12, vocab: 16).evenlySpacedWindows(count: 5)
        let gpt = session.model.model
        var best = -Float.infinity
        for w in 0..<5 {
            for t in 0..<12 {
                let prefix = Array(windows[(w * 13)..<(w * 13 + t + 1)])
                try gpt.forward(tokens: prefix, batch: 1, length: t + 1)
                best = max(best, gpt.nodeValues(of: [node])[t])
            }
        }
        let top = analysis.nodes[probe].top
        XCTAssertEqual(top.count, 2)
        XCTAssertEqual(top[0].value, best, accuracy: 1e-5)
        XCTAssertGreaterThanOrEqual(top[0].value, top[1].value)
        XCTAssertEqual(top[0].activations[top[0].position], top[0].value)
        XCTAssertLessThanOrEqual(top[0].tokens.count, 5, "3 tokens before, the token, 1 after")
        XCTAssertLessThanOrEqual(analysis.nodes[probe].bottom[0].value, top[1].value)

        // A/B means inside the circuit are not both zero for every node.
        XCTAssertTrue(analysis.nodes.contains { $0.meanA != $0.meanB })
        let decoded = try JSONDecoder().decode(CircuitAnalysis.self, from: analysis.jsonData())
        XCTAssertEqual(decoded, analysis)
    }
}
