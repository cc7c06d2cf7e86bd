import Foundation
import XCTest
@testable import SparseGPT

/// The task path (`answerTaskLoss`) against the full path (forward + taskLoss + backward), and the
/// compressed weights against weight changes.
final class TaskPathTests: XCTestCase {
    /// Random weights with matrices of the given density (std 0.3, so attention and AbsTopK are far from uniform).
    func randomParameters(_ config: ModelConfig, density: Double, seed: UInt64) -> [Float] {
        var values = initialParameters(config, seed: seed)
        var rng = RandomGenerator(seed: seed, stream: 77)
        for t in ParameterLayout(config).tensors {
            for i in 0..<t.count {
                if t.isMatrix {
                    values[t.offset + i] = rng.unit() < density ? Float(rng.normal() * 0.3) : 0
                } else {
                    values[t.offset + i] = Float(1 + 0.2 * rng.normal())
                }
            }
        }
        return values
    }

    struct Prompts {
        var lengths: [Int32]
        var tokens: [[Int32]]
        var candidates: [(correct: Int32, wrong: Int32)]
    }

    func randomPrompts(_ config: ModelConfig, lengths: [Int], seed: UInt64) -> Prompts {
        var rng = RandomGenerator(seed: seed, stream: 5)
        let tokens = lengths.map { n in (0..<n).map { _ in Int32(rng.below(config.vocab)) } }
        let candidates = lengths.map { _ -> (correct: Int32, wrong: Int32) in
            let a = rng.below(config.vocab)
            return (Int32(a), Int32((a + 1 + rng.below(config.vocab - 1)) % config.vocab))
        }
        return Prompts(lengths: lengths.map(Int32.init), tokens: tokens, candidates: candidates)
    }

    /// Loss and node mask gradient by the full path: right-padded batch (random padding tokens).
    func fullPath(_ gpt: GPT, _ p: Prompts, ablation: NodeAblation?, seed: UInt64) throws -> (Float, [Float]?) {
        var rng = RandomGenerator(seed: seed, stream: 9)
        let width = Int(p.lengths.max()!)
        var batch: [Int32] = []
        for t in p.tokens { batch += t + (t.count..<width).map { _ in Int32(rng.below(gpt.config.vocab)) } }
        try gpt.forward(tokens: batch, batch: p.tokens.count, length: width, ablation: ablation)
        let result = try gpt.taskLoss(lengths: p.lengths, candidates: p.candidates)
        guard ablation != nil else { return (result.loss, nil) }
        try gpt.backward(dLogits: result.dLogits, parameterGradients: false)
        return (result.loss, gpt.nodeMaskGradient)
    }

    func assertGradientClose(_ actual: [Float], _ expected: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let scale = expected.map(abs).max() ?? 0
        XCTAssertGreaterThan(scale, 0, "\(what): the gradient is not all zero", file: file, line: line)
        assertClose(actual, expected, rtol: 1e-4, atol: 1e-5 * scale, what, file: file, line: line)
    }

    func testTaskPathMatchesFullPath() throws {
        var checked = 0
        for dModel in [32, 64] {
            for layers in [1, 2] {
                for afrac in [0.25, 1.0] {
                    for density in [1.0, 0.25, 0.1] {
                        let config = ModelConfig(vocab: 29, context: 12, dModel: dModel, nLayer: layers, dHead: 16, afrac: afrac)
                        let seed = UInt64(dModel * 1000 + layers * 100 + Int(afrac * 10) + Int(density * 1000))
                        let what = "d_model \(dModel), n_layer \(layers), afrac \(afrac), density \(density)"
                        let values = randomParameters(config, density: density, seed: seed)
                        let full = try GPT(config: config, parameters: values, threads: 1)
                        let fast = try GPT(config: config, parameters: values, threads: 1)
                        let nodes = NodeLayout(config)
                        var rng = RandomGenerator(seed: seed, stream: 3)
                        let ablation = NodeAblation(mask: (0..<nodes.count).map { _ in rng.unit() < 0.7 ? 1 : 0 },
                                                    mean: (0..<nodes.count).map { _ in Float(rng.normal() * 0.5) })
                        let prompts = randomPrompts(config, lengths: [5, 1, 12, 3, 8, 7, 1, 10], seed: seed)
                        let (loss, gradient) = try fullPath(full, prompts, ablation: ablation, seed: seed)
                        let width = Int(prompts.lengths.max()!)
                        let fullLogits = prompts.candidates.enumerated().flatMap { p, pair -> [Float] in
                            let row = (p * width + Int(prompts.lengths[p]) - 1) * config.vocab
                            return [full.logits.pointer[row + Int(pair.correct)], full.logits.pointer[row + Int(pair.wrong)]]
                        }
                        let fastLogits = try fast.answerLogits(tokens: prompts.tokens.flatMap { $0 }, lengths: prompts.lengths,
                                                               candidates: prompts.candidates, ablation: ablation)
                        assertClose(fastLogits.flatMap { [$0.correct, $0.wrong] }, fullLogits, rtol: 1e-4, atol: 1e-5,
                                    "\(what): candidate logits")
                        let fastResult = try fast.answerTaskLoss(tokens: prompts.tokens.flatMap { $0 }, lengths: prompts.lengths,
                                                                 candidates: prompts.candidates, ablation: ablation, maskGradient: true)
                        assertClose([fastResult.loss], [loss], rtol: 1e-4, atol: 1e-6, "\(what): task loss")
                        assertGradientClose(try XCTUnwrap(fastResult.maskGradient), gradient!, "\(what): node mask gradient")
                        XCTAssertEqual(fast.nodeMaskGradient, fastResult.maskGradient)

                        // unablated, loss only; and with every mask 1 (the ablation is then the identity)
                        let (plain, _) = try fullPath(full, prompts, ablation: nil, seed: seed)
                        let fastPlain = try fast.answerTaskLoss(tokens: prompts.tokens.flatMap { $0 }, lengths: prompts.lengths,
                                                                candidates: prompts.candidates, ablation: nil, maskGradient: false)
                        XCTAssertNil(fastPlain.maskGradient)
                        assertClose([fastPlain.loss], [plain], rtol: 1e-4, atol: 1e-6, "\(what): unablated task loss")
                        let ones = NodeAblation(mask: [Float](repeating: 1, count: nodes.count), mean: ablation.mean)
                        let fastOnes = try fast.answerTaskLoss(tokens: prompts.tokens.flatMap { $0 }, lengths: prompts.lengths,
                                                               candidates: prompts.candidates, ablation: ones, maskGradient: true)
                        assertClose([fastOnes.loss], [plain], rtol: 1e-4, atol: 1e-6, "\(what): task loss with all masks 1")
                        let (_, onesGradient) = try fullPath(full, prompts, ablation: ones, seed: seed)
                        assertGradientClose(fastOnes.maskGradient!, onesGradient!, "\(what): node mask gradient with all masks 1")
                        checked += 1
                    }
                }
            }
        }
        XCTAssertEqual(checked, 24)
    }

    /// Which nodes the task path's gradient reaches: in the last block, q, attention output, MLP and
    /// final_resid nodes only see the answer rows, and attention-input, k and v nodes see all rows.
    /// With one prompt of length 1 and one longer prompt, the gradient still matches the full path
    /// node by node, including exact zeros for channels AbsTopK dropped.
    func testTaskPathWithOnlyShortPromptsAndSparseKernels() throws {
        let config = ModelConfig(vocab: 31, context: 16, dModel: 64, nLayer: 2, dHead: 16, afrac: 0.25)
        let values = randomParameters(config, density: 0.08, seed: 41)
        let full = try GPT(config: config, parameters: values, threads: 2)
        let fast = try GPT(config: config, parameters: values, threads: 2)
        let nodes = NodeLayout(config)
        var rng = RandomGenerator(seed: 41, stream: 1)
        let ablation = NodeAblation(mask: (0..<nodes.count).map { _ in rng.unit() < 0.8 ? 1 : 0 },
                                    mean: (0..<nodes.count).map { _ in Float(rng.normal() * 0.3) })
        for lengths in [[1], [1, 1, 1], [16, 1], [2, 16, 9, 1, 4]] {
            let prompts = randomPrompts(config, lengths: lengths, seed: UInt64(lengths.count))
            let (loss, gradient) = try fullPath(full, prompts, ablation: ablation, seed: 2)
            let result = try fast.answerTaskLoss(tokens: prompts.tokens.flatMap { $0 }, lengths: prompts.lengths,
                                                 candidates: prompts.candidates, ablation: ablation, maskGradient: true)
            XCTAssertTrue(fast.sparseWeights.joined().contains { $0 != nil }, "the sparse kernels run")
            assertClose([result.loss], [loss], rtol: 1e-4, atol: 1e-6, "lengths \(lengths): task loss")
            assertGradientClose(result.maskGradient!, gradient!, "lengths \(lengths): node mask gradient")
        }
    }

    func testTaskPathRejectsBadInput() throws {
        let config = tinyConfig(afrac: 0.5, layers: 1)
        let gpt = try GPT(config: config, seed: 3)
        let nodes = NodeLayout(config)
        let ablation = NodeAblation(mask: [Float](repeating: 1, count: nodes.count), mean: [Float](repeating: 0, count: nodes.count))
        XCTAssertThrowsError(try gpt.answerTaskLoss(tokens: [1, 2], lengths: [3], candidates: [(1, 2)], ablation: ablation, maskGradient: true))
        XCTAssertThrowsError(try gpt.answerTaskLoss(tokens: [1, 2], lengths: [2], candidates: [(1, 99)], ablation: ablation, maskGradient: true))
        XCTAssertThrowsError(try gpt.answerTaskLoss(tokens: [1, 2], lengths: [2], candidates: [(1, 2)], ablation: nil, maskGradient: true))
        XCTAssertThrowsError(try gpt.answerTaskLoss(tokens: [], lengths: [0], candidates: [(1, 2)], ablation: ablation, maskGradient: true))
        XCTAssertThrowsError(try gpt.answerTaskLoss(tokens: [Int32](repeating: 1, count: 9), lengths: [9], candidates: [(1, 2)],
                                                    ablation: ablation, maskGradient: false))
        // afterwards the full path still works, and a backward without a full forward is refused
        XCTAssertNoThrow(try gpt.answerTaskLoss(tokens: [1, 2], lengths: [2], candidates: [(1, 2)], ablation: ablation, maskGradient: true))
        XCTAssertThrowsError(try gpt.backward(dLogits: [], parameterGradients: false))
        try gpt.forward(tokens: [1, 2, 3], batch: 1, length: 3)
        XCTAssertEqual(gpt.logits.count >= 3 * config.vocab, true)
    }

    // MARK: compressed weights follow every weight change

    /// A model whose every block product runs sparse, its output, and a fresh model's output for the same weights.
    func sparseModel() throws -> (GPT, ModelConfig, [Int32]) {
        let config = ModelConfig(vocab: 31, context: 8, dModel: 64, nLayer: 2, dHead: 16, afrac: 0.25)
        let gpt = try GPT(config: config, parameters: randomParameters(config, density: 0.1, seed: 5), threads: 1)
        var rng = RandomGenerator(seed: 6)
        let tokens = (0..<16).map { _ in Int32(rng.below(config.vocab)) }
        return (gpt, config, tokens)
    }

    func logits(_ gpt: GPT, _ tokens: [Int32]) throws -> [Float] {
        try gpt.forward(tokens: tokens, batch: 2, length: 8)
        return Array(gpt.logits.array[0..<(16 * gpt.config.vocab)])
    }

    func freshLogits(_ gpt: GPT, _ tokens: [Int32]) throws -> [Float] {
        try logits(GPT(config: gpt.config, parameters: gpt.parameters.array, threads: 1), tokens)
    }

    func testWeightChangesAfterAForwardReachTheNextForward() throws {
        let (gpt, _, tokens) = try sparseModel()
        let before = try logits(gpt, tokens)
        XCTAssertEqual(gpt.sparseWeights.joined().filter { $0 != nil }.count, 8, "every block product runs sparse")
        XCTAssertEqual(try logits(gpt, tokens), before, "unchanged weights give the same output")

        // setTensor on each block matrix: a new nonzero, and a changed nonzero
        for name in ["h.0.attn.c_attn", "h.1.attn.c_attn", "h.1.attn.c_proj", "h.0.mlp.c_fc", "h.1.mlp.c_proj"] {
            let last = try logits(gpt, tokens)
            var w = try XCTUnwrap(gpt.tensor(name))
            let zero = try XCTUnwrap(w.firstIndex(of: 0)), nonzero = try XCTUnwrap(w.firstIndex { $0 != 0 })
            w[zero] = 0.7
            w[nonzero] *= -3
            try gpt.setTensor(name, w)
            let after = try logits(gpt, tokens)
            XCTAssertNotEqual(after, last, "\(name): setTensor changes the output")
            XCTAssertEqual(after, try freshLogits(gpt, tokens), "\(name): same output as a model built from the new weights")
        }

        // a write straight into the parameter buffer
        let last = try logits(gpt, tokens)
        let offset = try XCTUnwrap(gpt.layout.tensor(named: "h.0.mlp.c_proj")).offset
        let p = gpt.parameters.pointer + offset
        let i = (0..<(64 * 256)).first { p[$0] != 0 }!
        p[i] = 0
        let after = try logits(gpt, tokens)
        XCTAssertNotEqual(after, last, "a direct write changes the output")
        XCTAssertEqual(after, try freshLogits(gpt, tokens))

        // switching the sparse kernels off and on
        gpt.useSparseKernels = false
        let dense = try logits(gpt, tokens)
        XCTAssertEqual(gpt.sparseWeights.joined().filter { $0 != nil }.count, 0)
        gpt.useSparseKernels = true
        _ = try logits(gpt, tokens)
        XCTAssertEqual(gpt.sparseWeights.joined().filter { $0 != nil }.count, 8)
        assertClose(dense, after, rtol: 1e-4, atol: 1e-6, "dense and sparse kernels agree")
    }

    func testTrainerStepsAndTheTaskPathSeeNewWeights() throws {
        let (gpt, config, tokens) = try sparseModel()
        let training = TrainingConfig(density: 0.1, steps: 10, batch: 2, seed: 1)
        let trainer = try Trainer(model: gpt, config: training)
        let nodes = NodeLayout(config)
        let ablation = NodeAblation(mask: [Float](repeating: 1, count: nodes.count), mean: [Float](repeating: 0, count: nodes.count))
        func taskLoss(_ model: GPT) throws -> (Float, [Float]) {
            let r = try model.answerTaskLoss(tokens: Array(tokens[0..<13]), lengths: [8, 5], candidates: [(1, 2), (3, 4)],
                                             ablation: ablation, maskGradient: true)
            return (r.loss, r.maskGradient!)
        }
        var last = try logits(gpt, tokens), lastTask = try taskLoss(gpt)
        for _ in 0..<3 {
            try trainer.step(inputs: tokens, targets: tokens.map { ($0 + 1) % Int32(config.vocab) }, batch: 2, length: 8)
            let now = try logits(gpt, tokens)
            XCTAssertNotEqual(now, last, "a training step changes the output")
            XCTAssertEqual(now, try freshLogits(gpt, tokens))
            let task = try taskLoss(gpt)
            XCTAssertNotEqual(task.0, lastTask.0)
            let fresh = try taskLoss(GPT(config: config, parameters: gpt.parameters.array, threads: 1))
            XCTAssertEqual(task.0, fresh.0)
            XCTAssertEqual(task.1, fresh.1)
            last = now
            lastTask = task
        }
    }
}

/// The AbsTopK selection from a hint against the radix selection (the reference's tie rule).
final class HintedSelectionTests: XCTestCase {
    func testHintedSelectionMatchesRadixSelection() {
        var rng = RandomGenerator(seed: 99)
        let scratch = SelectionScratch(capacity: 300)
        let keys = UnsafeMutablePointer<UInt32>.allocate(capacity: 300)
        defer { keys.deallocate() }
        var expected = [UInt8](repeating: 0, count: 300), actual = expected
        var hint: UInt32 = 0x3f00_0000
        for trial in 0..<4000 {
            let n = 1 + rng.below(trial < 2000 ? 70 : 300)
            let k = rng.below(n + 2)
            let palette = (0..<(1 + rng.below(6))).map { _ in Float(rng.normal()) }
            for i in 0..<n {
                let x: Float
                switch trial % 5 {
                case 0: x = Float(rng.normal())
                case 1: x = palette[rng.below(palette.count)] * (rng.below(2) == 0 ? 1 : -1)   // many ties, both signs
                case 2: x = rng.below(3) == 0 ? (rng.below(2) == 0 ? 0 : -0.0) : Float(rng.normal())   // zeros and -0
                case 3: x = Float(rng.normal()) * Float(pow(2, Double(rng.below(60)) - 30))   // wide exponents
                default: x = [Float.infinity, -Float.infinity, Float.greatestFiniteMagnitude, .leastNonzeroMagnitude, 1][rng.below(5)]
                }
                keys[i] = magnitudeKey(x)
            }
            selectTopKeys(keys, n, k, keep: &expected, histogram: scratch.histogram, buffer: scratch.buffer)
            for h in [hint, 0, 1, UInt32(rng.below(1 << 31)), 0x7fff_ffff, 1 << 31, UInt32.max] {
                var guess = h
                actual = [UInt8](repeating: 2, count: 300)
                selectTopKeysNear(keys, n, k, keep: &actual, hint: &guess)
                XCTAssertEqual(actual[0..<n], expected[0..<n], "trial \(trial): n \(n), k \(k), hint \(h)")
            }
            selectTopKeysNear(keys, n, k, keep: &actual, hint: &hint)
            XCTAssertEqual(actual[0..<n].reduce(0) { $0 + Int($1) }, min(max(k, 0), n))
        }
    }
}
