import Foundation
import SparseGPT
import XCTest
@testable import Circuits

/// The pruning tensors of the reference (golden/README.md, prune.safetensors) through the engine's
/// forward and backward.
final class GoldenPruningTests: XCTestCase {
    var golden: GoldenPrune!
    var model: PrunableGPT!

    override func setUpWithError() throws {
        golden = try GoldenPrune.load()
        let config = ModelConfig(vocab: 64, context: 16, dModel: 32, nLayer: 2, afrac: 0.25)
        let layout = ParameterLayout(config)
        let parameters = layout.tensors.flatMap { golden.floats["model." + $0.name]! }
        model = PrunableGPT(model: try GPT(config: config, parameters: parameters, threads: 1))
    }

    func assertClose(_ a: [Float], _ b: [Float], rtol: Float, atol: Float, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        let worst = zip(a, b).enumerated().max { abs($0.element.0 - $0.element.1) - rtol * abs($0.element.1) < abs($1.element.0 - $1.element.1) - rtol * abs($1.element.1) }
        if let (i, (x, y)) = worst {
            XCTAssertLessThanOrEqual(abs(x - y), atol + rtol * abs(y), "\(what)[\(i)]: \(x) vs \(y)", file: file, line: line)
        }
    }

    func testGoldenNodeMeans() throws {
        let tokens = golden.ints["mean_tokens"]!
        let means = try model.nodeMeans(sequences: tokens, count: 32, length: 16)
        assertClose(means, golden.floats["means"]!, rtol: 1e-4, atol: 1e-6, "means")
    }

    func testGoldenFirstStepAndTauAfterFiveSteps() throws {
        var settings = PruningSettings()
        settings.steps = 5
        settings.tauNoise = 0
        var steps: [MaskTrainingStep] = []
        let tau = try trainMaskLogits(model: model, means: golden.floats["means"]!, pairs: try golden.pairs, lambda: 1e-3,
                                      settings: settings) { steps.append($0) }
        assertClose([steps[0].taskLoss], golden.floats["step1.task_loss"]!, rtol: 1e-4, atol: 1e-6, "step1.task_loss")
        assertClose([steps[0].objective], golden.floats["step1.objective"]!, rtol: 1e-4, atol: 1e-6, "step1.objective")
        XCTAssertEqual(steps[0].keptNodes, 736)
        assertClose(steps[0].tauGradient, golden.floats["step1.tau_grad"]!, rtol: 1e-3, atol: 1e-5, "step1.tau_grad")
        assertClose(tau, golden.floats["tau5"]!, rtol: 0, atol: 1e-4, "tau5")
    }

    func testGoldenCircuitByBisectionFromStoredTau() throws {
        let pairs = try golden.pairs
        let means = golden.floats["means"]!
        let full = try model.taskLoss(pairs, masks: [Float](repeating: 1, count: 736), means: means, maskGradient: false).loss
        assertClose([full], golden.floats["full_loss"]!, rtol: 1e-4, atol: 1e-6, "full_loss")
        let tau = golden.floats["tau_final"]!
        let circuit = try XCTUnwrap(try findCircuit(
            task: "opener", tau: tau, lambda: 1e-3, target: golden.floats["target"]![0], weights: try model.circuitWeights(),
            candidateTokens: pairs.candidateTokens) { k in
                try self.model.taskLoss(pairs, masks: keepTop(tau, k).map { $0 ? 1 : 0 }, means: means, maskGradient: false).loss
            })
        XCTAssertEqual(circuit.k, 111)
        XCTAssertEqual(circuit.keep, golden.circuitKeep())
        XCTAssertEqual(circuit.edgeCount, 506)
        let reference = golden.trace
        XCTAssertEqual(circuit.trace.map(\.k), reference.map(\.k))
        assertClose(circuit.trace.map(\.loss), reference.map(\.loss), rtol: 1e-4, atol: 1e-6, "bisection trace")
    }

    /// The golden pairs and means, with every `every`-th node from `first` on pruned.
    private func prunedEveryNth(from first: Int, every: Int) throws -> (TaskPairs, [Float], [Float]) {
        var masks = [Float](repeating: 1, count: 736)
        for i in stride(from: first, to: 736, by: every) { masks[i] = 0 }
        return (try golden.pairs, golden.floats["means"]!, masks)
    }

    func testChunkingDoesNotChangeLossOrGradient() throws {
        let (pairs, means, masks) = try prunedEveryNth(from: 0, every: 3)
        model.chunkPrompts = 64
        let whole = try model.taskLoss(pairs, masks: masks, means: means, maskGradient: true)
        model.chunkPrompts = 3
        let chunked = try model.taskLoss(pairs, masks: masks, means: means, maskGradient: true)
        assertClose([chunked.loss], [whole.loss], rtol: 1e-5, atol: 1e-7, "loss")
        assertClose(chunked.maskGradient!, whole.maskGradient!, rtol: 1e-4, atol: 1e-7, "mask gradient")
    }

    func testReplicasGiveBitwiseTheSameLossAndGradient() throws {
        let (pairs, means, masks) = try prunedEveryNth(from: 1, every: 4)
        model.chunkPrompts = 3
        let alone = try model.taskLoss(pairs, masks: masks, means: means, maskGradient: true)
        let config = model.model.config
        let parameters = ParameterLayout(config).tensors.flatMap { golden.floats["model." + $0.name]! }
        let replicated = PrunableGPT(model: try GPT(config: config, parameters: parameters, threads: 1),
                                     replicas: try (0..<2).map { _ in try GPT(config: config, parameters: parameters, threads: 1) },
                                     chunkPrompts: 3)
        // The engine count changes between evaluations (a worker lending and taking back threads).
        for engines in [3, 1, 4, 2] {
            try replicated.useEngines(engines) { try GPT(config: config, parameters: parameters, threads: 1) }
            XCTAssertEqual(replicated.engines, engines)
            let shared = try replicated.taskLoss(pairs, masks: masks, means: means, maskGradient: true)
            XCTAssertEqual(shared.loss, alone.loss)
            XCTAssertEqual(shared.maskGradient, alone.maskGradient)
            XCTAssertEqual(try replicated.taskLoss(pairs, masks: masks, means: means, maskGradient: false).loss, alone.loss)
        }
        XCTAssertEqual(replicated.replicas.count, 3, "replicas are made once and kept")
    }
}
