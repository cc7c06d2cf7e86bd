import Foundation
import XCTest
@testable import SparseGPT

/// Training and pruning results are bitwise the same for any thread count: every loop splits its
/// work into chunks fixed by the sizes alone and adds partial sums in chunk order.
final class ThreadCountTests: XCTestCase {
    // wide enough for several chunks per loop, sparse enough for the kernels that skip zeros
    let model = ModelConfig(vocab: 61, context: 32, dModel: 64, nLayer: 2, dHead: 16, afrac: 0.25)
    let training = TrainingConfig(density: 0.125, steps: 6, batch: 8, seed: 5)

    struct Outcome: Equatable {
        var losses: [Float]
        var parameters, adamM, adamV: [Float]
    }

    /// Trains `training.steps` steps; `threadsAt(step)` is the thread count for that step.
    func train(_ threadsAt: (Int) -> Int) throws -> Outcome {
        let gpt = try GPT(config: model, seed: training.seed, threads: threadsAt(0))
        let trainer = try Trainer(model: gpt, config: training)
        let window = model.context + 1
        let tokens = randomTokens(count: training.steps * training.batch * window, vocab: model.vocab, seed: 9)
        var losses: [Float] = []
        for t in 0..<training.steps {
            if gpt.threads != threadsAt(t) { gpt.setThreads(threadsAt(t)) }
            var x = [Int32](), y = [Int32]()
            for b in 0..<training.batch {
                let base = (t * training.batch + b) * window
                x += tokens[base..<(base + model.context)]
                y += tokens[(base + 1)..<(base + window)]
            }
            losses.append(try trainer.step(inputs: x, targets: y, batch: training.batch, length: model.context).loss)
        }
        return Outcome(losses: losses, parameters: gpt.parameters.array, adamM: trainer.adamM.array, adamV: trainer.adamV.array)
    }

    func testTrainingIsBitwiseTheSameForOneTwoAndThreeThreads() throws {
        let one = try train { _ in 1 }
        XCTAssertEqual(try train { _ in 2 }, one)
        XCTAssertEqual(try train { _ in 3 }, one)
        // a shard may get more threads between steps
        XCTAssertEqual(try train { $0 < 3 ? 1 : 2 }, one)
    }

    func testAblatedBackwardAndTaskLossAreBitwiseTheSameForAnyThreadCount() throws {
        let values = initialParameters(model, seed: 3)
        var rng = RandomGenerator(seed: 8)
        let gpt1 = try GPT(config: model, parameters: values, threads: 1)
        let ablation = NodeAblation(mask: (0..<gpt1.nodes.count).map { _ in rng.unit() < 0.7 ? 1 : 0 },
                                    mean: (0..<gpt1.nodes.count).map { _ in Float(rng.normal() * 0.1) })
        let tokens = randomTokens(count: 6 * model.context, vocab: model.vocab, seed: 2)
        let lengths: [Int32] = [32, 5, 17, 32, 9, 21]
        let prompts = Array(tokens.prefix(Int(lengths.reduce(0, +))))
        let candidates = lengths.indices.map { (correct: Int32($0), wrong: Int32($0 + 7)) }
        func outcome(threads: Int) throws -> [[Float]] {
            let gpt = try GPT(config: model, parameters: values, threads: threads)
            try gpt.forward(tokens: tokens, batch: 6, length: model.context, ablation: ablation)
            let dLogits = (0..<gpt.logits.count).map { _ in Float(0) }.enumerated().map { i, _ in Float(i % 13) * 1e-3 }
            try gpt.backward(dLogits: dLogits, parameterGradients: true)
            let task = try gpt.answerTaskLoss(tokens: prompts, lengths: lengths, candidates: candidates, ablation: ablation, maskGradient: true)
            return [gpt.logits.array, gpt.gradients.array, gpt.nodeMaskGradient, [task.loss], task.maskGradient!]
        }
        let one = try outcome(threads: 1)
        XCTAssertEqual(try outcome(threads: 2), one)
        XCTAssertEqual(try outcome(threads: 3), one)
    }
}
