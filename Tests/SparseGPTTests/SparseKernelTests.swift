import Foundation
import XCTest
@testable import SparseGPT

/// The products that skip zero weights and activations agree with the dense sgemm path.
final class SparseKernelTests: XCTestCase {
    func testSparseMatrixBothOrders() {
        let w: [Float] = [0, 2, 0, 0,
                          1, 0, 0, 3,
                          0, 0, 0, 0]
        let m = SparseMatrix(rows: 3, cols: 4)
        w.withUnsafeBufferPointer { m.rebuild(from: $0.baseAddress!) }
        XCTAssertEqual(m.nonzero, 3)
        XCTAssertEqual((0...3).map { m.rowStart[$0] }, [0, 1, 3, 3])
        XCTAssertEqual((0..<3).map { m.rowIndex[$0] }, [1, 0, 3])
        XCTAssertEqual((0...4).map { m.colStart[$0] }, [0, 1, 2, 2, 3])
        XCTAssertEqual((0..<3).map { m.colIndex[$0] }, [1, 0, 1])
        XCTAssertEqual((0..<3).map { m.colValue[$0] }, [1, 2, 3])
    }

    /// With ablations whose masks are 0/1 and fractional: a mask-0 column of an ablated site is taken
    /// out of the sparse product and its mean's product added back, which must match sgemm.
    func testSparseAndDensePathsAgree() throws {
        let config = ModelConfig(vocab: 31, context: 8, dModel: 64, nLayer: 2, afrac: 0.25)
        var values = initialParameters(config, seed: 8)
        let layout = ParameterLayout(config)
        var rng = RandomGenerator(seed: 12)
        for t in layout.tensors where t.isMatrix && !t.isEmbedding {
            for i in 0..<t.count where rng.unit() > 0.1 { values[t.offset + i] = 0 }
        }
        let tokens = (0..<(3 * 8)).map { _ in Int32(rng.below(config.vocab)) }
        let targets = (0..<(3 * 8)).map { _ in Int32(rng.below(config.vocab)) }
        let nodes = NodeLayout(config)
        let means = (0..<nodes.count).map { _ in Float(rng.normal() * 0.1) }
        let binary = NodeAblation(mask: (0..<nodes.count).map { _ in rng.unit() < 0.7 ? 1 : 0 }, mean: means)
        let fractional = NodeAblation(mask: (0..<nodes.count).map { _ in [0, 0.3, 1][rng.below(3)] }, mean: means)
        for (name, ablation) in [("0/1 mask", binary), ("fractional mask", fractional)] {
            var results: [([Float], Float, [Float], [Float])] = []
            var taskResults: [(Float, [Float])] = []
            for sparse in [false, true] {
                let gpt = try GPT(config: config, parameters: values, threads: 2)
                gpt.useSparseKernels = sparse
                try gpt.forward(tokens: tokens, batch: 3, length: 8, ablation: ablation)
                XCTAssertEqual(gpt.sparseWeights.joined().filter { $0 != nil }.count, sparse ? 8 : 0)
                let loss = try gpt.crossEntropy(targets: targets)
                gpt.backwardFromLoss()
                results.append((gpt.logits.array, loss, gpt.gradients.array, gpt.nodeMaskGradient))
                let task = try gpt.answerTaskLoss(tokens: Array(tokens[0..<13]), lengths: [8, 5], candidates: [(1, 2), (3, 4)],
                                                  ablation: ablation, maskGradient: true)
                taskResults.append((task.loss, task.maskGradient!))
            }
            assertClose(results[1].0, results[0].0, rtol: 1e-4, atol: 1e-6, "\(name): logits")
            assertClose([results[1].1], [results[0].1], rtol: 1e-5, atol: 1e-6, "\(name): loss")
            assertClose(results[1].2, results[0].2, rtol: 1e-3, atol: 1e-6, "\(name): gradients")
            assertClose(results[1].3, results[0].3, rtol: 1e-3, atol: 1e-6, "\(name): node mask gradient")
            assertClose([taskResults[1].0], [taskResults[0].0], rtol: 1e-5, atol: 1e-6, "\(name): task loss")
            assertClose(taskResults[1].1, taskResults[0].1, rtol: 1e-3, atol: 1e-6, "\(name): task mask gradient")
        }
    }
}
