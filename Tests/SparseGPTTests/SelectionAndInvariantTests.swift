import Foundation
import XCTest
@testable import SparseGPT

final class SelectionAndInvariantTests: XCTestCase {
    /// selectTopK agrees with the first k of a stable descending sort, ties included.
    func testTopKBreaksTiesTowardLowerIndex() {
        var rng = RandomGenerator(seed: 9)
        for trial in 0..<300 {
            let n = 1 + rng.below(40), k = rng.below(n + 2)
            let scores = (0..<n).map { _ in trial % 3 == 2 ? Float(rng.unit()) * 1e-3 : Float(rng.below(trial % 3 == 0 ? 4 : 1000)) }
            var keep = [UInt8](repeating: 7, count: n)
            selectTopK(scores, n, k, keep: &keep, scratch: SelectionScratch(capacity: n))
            let order = (0..<n).sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
            var expected = [UInt8](repeating: 0, count: n)
            for i in order.prefix(k) { expected[i] = 1 }
            XCTAssertEqual(keep, expected, "n \(n) k \(k) scores \(scores)")
        }
    }

    func testKeptCountUsesCeilingInDouble() {
        XCTAssertEqual(keptCount(0.25, 32), 8)
        XCTAssertEqual(keptCount(0.25, 33), 9)
        XCTAssertEqual(keptCount(1, 17), 17)
        XCTAssertEqual(keptCount(0.8239795918367347, 2048), 1688)
    }

    /// After annealing, each matrix has exactly max(ceil(d numel), floor) nonzeros and every neuron keeps >= 4.
    func testProjectionCountsAndPerNeuronFloorAfterAnnealing() throws {
        let config = tinyConfig(afrac: 0.5, layers: 2, dModel: 32)
        let training = TrainingConfig(density: 0.05, embedDensity: 0.3, steps: 4, batch: 2, seed: 1)
        let gpt = try GPT(config: config, seed: 5)
        let trainer = try Trainer(model: gpt, config: training)
        let data = try TokenWindows(tokens: randomTokens(count: 500, vocab: config.vocab, seed: 2), length: config.context, vocab: config.vocab)
        for t in 0..<training.steps {
            let b = data.batch(step: t, seed: training.seed, size: training.batch)
            try trainer.step(inputs: b.inputs, targets: b.targets, batch: training.batch, length: config.context)
        }
        XCTAssertEqual(training.schedule(step: training.steps - 1).density, 0.05)
        for t in gpt.layout.tensors where t.isMatrix {
            let w = gpt.tensor(t.name)!
            let nonzero = w.filter { $0 != 0 }.count
            if t.isEmbedding {
                XCTAssertEqual(nonzero, keptCount(0.3, t.count), t.name)
                continue
            }
            let rows = t.shape[0], cols = t.shape[1]
            let neurons = t.neuronsAreColumns ? cols : rows
            // 0.05 * numel is below the floor of 4 per neuron here, so the floor decides the count
            XCTAssertEqual(nonzero, max(keptCount(0.05, t.count), 4 * neurons), t.name)
            for n in 0..<neurons {
                let kept = t.neuronsAreColumns ? (0..<rows).filter { w[$0 * cols + n] != 0 }.count
                                               : (0..<cols).filter { w[n * cols + $0] != 0 }.count
                XCTAssertGreaterThanOrEqual(kept, 4, "\(t.name) neuron \(n)")
            }
            let range = t.offset..<(t.offset + t.count)
            for (i, (m, v)) in zip(trainer.adamM.array[range], trainer.adamV.array[range]).enumerated() where w[i] == 0 {
                XCTAssertTrue(m == 0 && v == 0, "\(t.name)[\(i)]: moments of a zeroed weight")
            }
        }
    }

    /// Above the floor, the budget ceil(d numel) decides the count exactly.
    func testProjectionCountAboveTheFloor() throws {
        let config = tinyConfig(afrac: 1, layers: 1, dModel: 32)
        let training = TrainingConfig(density: 0.5, embedDensity: 0.75, steps: 2, batch: 2, seed: 1)
        let gpt = try GPT(config: config, seed: 6)
        let trainer = try Trainer(model: gpt, config: training)
        let data = try TokenWindows(tokens: randomTokens(count: 300, vocab: config.vocab, seed: 3), length: config.context, vocab: config.vocab)
        for t in 0..<2 {
            let b = data.batch(step: t, seed: 1, size: 2)
            try trainer.step(inputs: b.inputs, targets: b.targets, batch: 2, length: config.context)
        }
        for t in gpt.layout.tensors where t.isMatrix {
            let nonzero = gpt.tensor(t.name)!.filter { $0 != 0 }.count
            XCTAssertEqual(nonzero, keptCount(t.isEmbedding ? 0.75 : 0.5, t.count), t.name)
        }
    }

    func testValidationRejectsDensityBelowTheFloorRule() {
        let model = ModelConfig(dModel: 64)
        XCTAssertThrowsError(try TrainingConfig(density: 0.125).validate(for: model)) { error in
            XCTAssertTrue("\(error)".contains("density*d_model"), "\(error)")
        }
        XCTAssertNoThrow(try TrainingConfig(density: 0.25).validate(for: model))
        XCTAssertNoThrow(try TrainingConfig(density: 0.0625).validate(for: ModelConfig(dModel: 256)))
        XCTAssertThrowsError(try ModelConfig(dModel: 40).validate())
    }

    func testNodeLayoutOffsets() {
        let nodes = NodeLayout(ModelConfig(dModel: 32, nLayer: 2))
        XCTAssertEqual(nodes.count, 736)
        XCTAssertEqual(nodes.offset(layer: 1, .q), 352 + 32)   // a layer has 7 * 32 + 128 nodes
        XCTAssertEqual(nodes.location(named: "0.mlp_neuron")?.size, 128)
        XCTAssertEqual(nodes.finalResidOffset, 704)
    }

    func testBadInputsAreRejected() throws {
        let gpt = try GPT(config: tinyConfig(), seed: 1)
        XCTAssertThrowsError(try gpt.forward(tokens: [1, 2, 99], batch: 1, length: 3))
        XCTAssertThrowsError(try gpt.forward(tokens: [Int32](repeating: 0, count: 9), batch: 1, length: 9))
        XCTAssertThrowsError(try gpt.forward(tokens: [1, 2], batch: 1, length: 3))
    }
}

final class CausalityTests: XCTestCase {
    /// A right-padded prompt gives the same logits at its own positions as the prompt alone.
    func testRightPaddingDoesNotChangePromptLogits() throws {
        let config = tinyConfig(afrac: 0.5, layers: 2)
        let gpt = try GPT(config: config, seed: 4, threads: 2)
        let prompt: [Int32] = [3, 9, 1, 7, 2]
        try gpt.forward(tokens: prompt, batch: 1, length: prompt.count)
        let alone = gpt.logits.array
        try gpt.forward(tokens: prompt + [0, 0, 0] + [5, 5, 5, 5, 5, 5, 5, 5], batch: 2, length: 8)
        let padded = Array(gpt.logits.array[0..<(prompt.count * config.vocab)])
        assertClose(padded, alone, rtol: 1e-5, atol: 1e-6, "logits of the padded prompt")
    }
}
