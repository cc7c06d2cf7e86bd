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

    /// The tiled products (rows on lanes) give the row-by-row kernel's bits, in both directions, for
    /// whole tiles and a remainder, on 1 and 3 threads.
    func testTiledProductsGiveTheRowKernelsBits() {
        var rng = RandomGenerator(seed: 5)
        let outWidth = 96, inWidth = 40, rows = 3 * sparseProductTile + 7
        let w = (0..<(outWidth * inWidth)).map { _ in rng.unit() < 0.1 ? Float(rng.normal()) : 0 }
        let m = SparseMatrix(rows: outWidth, cols: inWidth)
        w.withUnsafeBufferPointer { m.rebuild(from: $0.baseAddress!) }
        // AbsTopK-like inputs: a quarter nonzero, some of them negative zeros
        func activations(_ width: Int) -> [Float] {
            (0..<(rows * width)).map { _ in
                let u = rng.unit()
                return u < 0.25 ? Float(rng.normal()) : (u < 0.3 ? -0.0 : 0)
            }
        }
        let x = activations(inWidth), dOut = activations(outWidth)
        let indices = UnsafeMutablePointer<Int32>.allocate(capacity: 3 * outWidth)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 3 * outWidth * sparseProductTile)
        defer { indices.deallocate(); scratch.deallocate() }
        func bits(_ count: Int, _ body: (UnsafeMutablePointer<Float>) -> Void) -> [UInt32] {
            var out = [Float](repeating: .nan, count: count)
            out.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
            return out.map(\.bitPattern)
        }
        let forwardRows = bits(rows * outWidth) { o in
            sparseProduct(o, outWidth: outWidth, x, inWidth: inWidth, rows: rows, start: m.colStart, index: m.colIndex,
                          value: m.colValue, indices: indices, threads: 1)
        }
        let backwardRows = bits(rows * inWidth) { o in
            sparseProduct(o, outWidth: inWidth, dOut, inWidth: outWidth, rows: rows, start: m.rowStart, index: m.rowIndex,
                          value: m.rowValue, indices: indices, threads: 1)
        }
        XCTAssertTrue(forwardRows.contains { $0 != 0 } && backwardRows.contains { $0 != 0 })
        for threads in [1, 3] {
            let forward = bits(rows * outWidth) { m.productWithTranspose($0, x, rows: rows, scratch: scratch, indices: indices, threads: threads) }
            let backward = bits(rows * inWidth) { m.product($0, dOut, rows: rows, scratch: scratch, indices: indices, threads: threads) }
            XCTAssertEqual(forward, forwardRows, "input @ W^T, \(threads) threads")
            XCTAssertEqual(backward, backwardRows, "dOut @ W, \(threads) threads")
        }
    }

    /// Every product path against sgemm on whole rows: sparse kernels, and products of ablated sites
    /// that take mask-0 columns out (sparse, and dense with the kept columns gathered), under masks
    /// that keep most nodes, few nodes, and fractional masks.
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
        let most = NodeAblation(mask: (0..<nodes.count).map { _ in rng.unit() < 0.7 ? 1 : 0 }, mean: means)
        let few = NodeAblation(mask: (0..<nodes.count).map { _ in rng.unit() < 0.2 ? 1 : 0 }, mean: means)
        let fractional = NodeAblation(mask: (0..<nodes.count).map { _ in [0, 0.3, 1][rng.below(3)] }, mean: means)
        typealias Result = (logits: [Float], loss: Float, gradients: [Float], maskGradient: [Float], taskLoss: Float, taskMaskGradient: [Float])
        func run(_ ablation: NodeAblation, sparse: Bool, separate: Bool) throws -> Result {
            let gpt = try GPT(config: config, parameters: values, threads: 2)
            gpt.useSparseKernels = sparse
            gpt.separatesPrunedColumns = separate
            try gpt.forward(tokens: tokens, batch: 3, length: 8, ablation: ablation)
            XCTAssertEqual(gpt.sparseWeights.joined().filter { $0 != nil }.count, sparse ? 8 : 0)
            let loss = try gpt.crossEntropy(targets: targets)
            gpt.backwardFromLoss()
            let task = try gpt.answerTaskLoss(tokens: Array(tokens[0..<13]), lengths: [8, 5], candidates: [(1, 2), (3, 4)],
                                              ablation: ablation, maskGradient: true)
            return (gpt.logits.array, loss, gpt.gradients.array, gpt.nodeMaskGradient, task.loss, task.maskGradient!)
        }
        for (name, ablation) in [("most kept", most), ("few kept", few), ("fractional", fractional)] {
            let expected = try run(ablation, sparse: false, separate: false)
            for (sparse, separate) in [(true, false), (true, true), (false, true)] {
                let got = try run(ablation, sparse: sparse, separate: separate)
                let label = "\(name), sparse kernels \(sparse), separated columns \(separate)"
                assertClose(got.logits, expected.logits, rtol: 1e-4, atol: 1e-6, "\(label): logits")
                assertClose([got.loss], [expected.loss], rtol: 1e-5, atol: 1e-6, "\(label): loss")
                assertClose(got.gradients, expected.gradients, rtol: 1e-3, atol: 1e-6, "\(label): gradients")
                assertClose(got.maskGradient, expected.maskGradient, rtol: 1e-3, atol: 1e-6, "\(label): node mask gradient")
                assertClose([got.taskLoss], [expected.taskLoss], rtol: 1e-5, atol: 1e-6, "\(label): task loss")
                assertClose(got.taskMaskGradient, expected.taskMaskGradient, rtol: 1e-3, atol: 1e-6, "\(label): task mask gradient")
            }
        }
    }
}
