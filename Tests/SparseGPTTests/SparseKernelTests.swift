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
        let ablation = NodeAblation(mask: (0..<nodes.count).map { _ in rng.unit() < 0.7 ? 1 : 0 },
                                    mean: (0..<nodes.count).map { _ in Float(rng.normal() * 0.1) })
        var results: [([Float], Float, [Float], [Float])] = []
        for sparse in [false, true] {
            let gpt = try GPT(config: config, parameters: values, threads: 2)
            gpt.useSparseKernels = sparse
            try gpt.forward(tokens: tokens, batch: 3, length: 8, ablation: ablation)
            XCTAssertEqual(gpt.sparseWeights.joined().filter { $0 != nil }.count, sparse ? 8 : 0)
            let loss = try gpt.crossEntropy(targets: targets)
            gpt.backwardFromLoss()
            results.append((gpt.logits.array, loss, gpt.gradients.array, gpt.nodeMaskGradient))
        }
        assertClose(results[1].0, results[0].0, rtol: 1e-4, atol: 1e-6, "logits")
        assertClose([results[1].1], [results[0].1], rtol: 1e-5, atol: 1e-6, "loss")
        assertClose(results[1].2, results[0].2, rtol: 1e-3, atol: 1e-6, "gradients")
        assertClose(results[1].3, results[0].3, rtol: 1e-3, atol: 1e-6, "node mask gradient")
    }
}
