import Foundation
import SparseGPT
import XCTest
@testable import Circuits

final class CircuitPrimitivesTests: XCTestCase {
    func testLayoutMatchesReferenceNodeOrder() throws {
        let golden = try GoldenPrune.load()
        let reference = try JSONSerialization.jsonObject(with: Data(golden.metadata["nodes"]!.utf8)) as! [[Any]]
        let layout = golden.layout
        XCTAssertEqual(layout.locations.map(\.name), reference.map { $0[0] as! String })
        XCTAssertEqual(layout.locations.map(\.size), reference.map { $0[1] as! Int })
        XCTAssertEqual(layout.count, 736)
        XCTAssertEqual(layout.location(layer: 1, "q").offset, 352 + 32)
        XCTAssertEqual(layout.finalResidual.range, 704..<736)
    }

    func testHardMaskAndStraightThroughGradient() {
        let tau: [Float] = [0.1, 0, -0.3, 1]
        XCTAssertEqual(StraightThroughMask.mask(tau), [1, 0, 0, 1])
        let g = StraightThroughMask.tauGradient(tau: tau, maskGradient: [1, 2, -1, 0.5], temperature: 1)
        for (i, t) in tau.enumerated() {
            let s = 1 / (1 + exp(-Double(t)))
            XCTAssertEqual(Double(g[i]), [1, 2, -1, 0.5][i] * s * (1 - s), accuracy: 1e-7)
        }
        let hot = StraightThroughMask.tauGradient(tau: [0.5], maskGradient: [1], temperature: 2)
        let s = 1 / (1 + exp(-0.25))
        XCTAssertEqual(Double(hot[0]), s * (1 - s) / 2, accuracy: 1e-7)
    }

    func testTauAdamMatchesHandComputedStepsAndClamps() {
        var adam = TauAdam(count: 2, learningRate: 0.1)
        var tau: [Float] = [0.5, 0.95]
        adam.update(&tau, gradient: [2, -1])
        // First bias-corrected step is lr · sign(g) (up to eps).
        XCTAssertEqual(tau[0], 0.4, accuracy: 1e-6)
        XCTAssertEqual(tau[1], 1, "clamped to the upper bound")
        adam.update(&tau, gradient: [-2, -1])
        // m = 0.1·(0.9·2 − 2)... computed in double for the check.
        let m = (0.9 * 0.1 * 2 + 0.1 * -2) / (1 - 0.81), v = (0.999 * 0.001 * 4 + 0.001 * 4) / (1 - 0.999 * 0.999)
        XCTAssertEqual(Double(tau[0]), 0.4 - 0.1 * m / (v.squareRoot() + 1e-8), accuracy: 1e-6)
        XCTAssertEqual(adam.step, 2)
        var low: [Float] = [-0.99]
        var lowAdam = TauAdam(count: 1, learningRate: 0.5)
        lowAdam.update(&low, gradient: [3])
        XCTAssertEqual(low, [-1])
    }

    func testKeepTopBreaksTiesTowardLowerIndex() {
        let tau: [Float] = [0.2, 0.5, 0.2, 0.2, -1, 0.5]
        XCTAssertEqual(rankByTau(tau), [1, 5, 0, 2, 3, 4])
        XCTAssertEqual(keepTop(tau, 3), [true, true, false, false, false, true])
        XCTAssertEqual(keepTop(tau, 0), [Bool](repeating: false, count: 6))
        XCTAssertEqual(keepTop(tau, 6), [Bool](repeating: true, count: 6))
    }

    func testBisectionFollowsReferenceConvention() {
        // Monotone loss: bisection finds the least k with loss ≤ target, checking N first.
        var calls: [Int] = []
        let found = bisectKeptNodes(count: 100, target: 0.5) { k in calls.append(k); return k >= 37 ? 0.1 : 1 }
        XCTAssertEqual(found?.k, 37)
        XCTAssertEqual(calls.first, 100)
        XCTAssertEqual(Set(calls).count, calls.count, "no k is evaluated twice")
        XCTAssertEqual(found?.trace.map(\.k), calls)
        // The full model misses the target: no circuit, not a circuit of size 0.
        XCTAssertNil(bisectKeptNodes(count: 10, target: 0.1) { _ in 0.2 })
        // Non-monotone: the k bisection lands on, not the least k that meets the target.
        let bumpy = bisectKeptNodes(count: 8, target: 0.5) { k in [1, 0.1, 1, 1, 0.2, 0.3, 0.1, 0.1, 0.1][k] }
        XCTAssertEqual(bumpy?.k, 4)
    }

    func testBisectionStartsFromTheTrainedMaskWhenItReachesTheTarget() {
        // Loss low up to the trained mask (k = 5), bad in the middle, good again near N: the
        // reference convention climbs to the full model, the trained-mask start stays inside it.
        let loss: (Int) -> Float = { k in k < 3 ? 1 : (k <= 5 ? 0.1 : (k < 19 ? 1 : 0.1)) }
        XCTAssertEqual(bisectKeptNodes(count: 20, target: 0.5, loss: loss)?.k, 19)
        let trained = bisectKeptNodes(count: 20, target: 0.5, trainedNodes: 5, loss: loss)
        XCTAssertEqual(trained?.k, 3)
        XCTAssertEqual(trained?.trace.map(\.k).prefix(2), [20, 5], "the full model, then the trained mask")
        // The model itself misses the target: no circuit, even if the trained mask reaches it.
        XCTAssertNil(bisectKeptNodes(count: 20, target: 0.5, trainedNodes: 5) { k in k == 20 ? 0.6 : 0.1 })
        // A trained mask that misses the target: the whole range, as the reference.
        let missed = bisectKeptNodes(count: 20, target: 0.05, trainedNodes: 5) { k in k == 20 ? 0.01 : (k >= 12 ? 0.04 : 1) }
        XCTAssertEqual(missed?.k, 12)
        XCTAssertEqual(missed?.trace.map(\.k).prefix(2), [20, 5])
        // Nothing reaches: nil, never a circuit of size 0.
        XCTAssertNil(bisectKeptNodes(count: 20, target: 0.05, trainedNodes: 5) { _ in 0.2 })
    }

    func testBisectionReproducesGoldenTrace() throws {
        let golden = try GoldenPrune.load()
        let trace = golden.trace
        let table = Dictionary(uniqueKeysWithValues: trace.map { ($0.k, $0.loss) })
        let found = bisectKeptNodes(count: 736, target: golden.floats["target"]![0]) { k in
            guard let loss = table[k] else { XCTFail("bisection asked for k = \(k), which the reference never evaluated"); return .infinity }
            return loss
        }
        XCTAssertEqual(found?.k, 111)
        XCTAssertEqual(found?.trace.map(\.k), trace.map(\.k))
    }

    func testGoldenCircuitFromStoredTauHasTheReferenceMasksAndEdges() throws {
        let golden = try GoldenPrune.load()
        let keep = keepTop(golden.floats["tau_final"]!, Int(golden.ints["circuit.k"]![0]))
        XCTAssertEqual(keep, golden.circuitKeep())
        let edges = countEdges(weights: try golden.weights(), keep: keep, candidateTokens: try golden.pairs.candidateTokens)
        XCTAssertEqual(edges, Int(golden.ints["circuit.edges"]![0]))
        XCTAssertEqual(edges, 506)
    }

    func testEdgeCountingByHand() throws {
        // d_model 1 (nodes: attn_in, q, k, v, attn_out, mlp_in, 4 neurons, mlp_out, final_resid).
        let layout = NodeLayout(dModel: 1, nLayer: 1)
        let matrices: [String: WeightMatrix] = [
            "h.0.attn.c_attn": try WeightMatrix(name: "h.0.attn.c_attn", rows: 3, columns: 1, values: [1, 0, 2]),
            "h.0.attn.c_proj": try WeightMatrix(name: "h.0.attn.c_proj", rows: 1, columns: 1, values: [3]),
            "h.0.mlp.c_fc": try WeightMatrix(name: "h.0.mlp.c_fc", rows: 4, columns: 1, values: [1, 1, 0, 1]),
            "h.0.mlp.c_proj": try WeightMatrix(name: "h.0.mlp.c_proj", rows: 1, columns: 4, values: [1, 1, 1, 0]),
            "lm_head": try WeightMatrix(name: "lm_head", rows: 3, columns: 1, values: [5, 0, 7]),
        ]
        let weights = try CircuitWeights(layout: layout) { matrices[$0]! }
        let all = [Bool](repeating: true, count: layout.count)
        // c_attn 2 (q, v) + c_proj 1 + c_fc 3 + mlp c_proj 3 + lm_head rows 0 and 2 → 2 (row 1 is zero).
        XCTAssertEqual(countEdges(weights: weights, keep: all, candidateTokens: [0, 1, 2, 2]), 2 + 1 + 3 + 3 + 2)
        XCTAssertEqual(countEdges(weights: weights, keep: all, candidateTokens: [1]), 9)
        var keep = all
        keep[layout.location(layer: 0, "v").offset] = false          // removes q/k/v's v edge and v → attn_out
        keep[layout.location(layer: 0, "mlp_neuron").offset + 1] = false  // removes one c_fc and one c_proj edge
        XCTAssertEqual(countEdges(weights: weights, keep: keep, candidateTokens: [0, 2]), 1 + 0 + 2 + 2 + 2)
        let groups = circuitEdges(weights: weights, keep: keep, candidateTokens: [0, 2])
        XCTAssertEqual(groups.last?.edges, [CircuitEdge(from: 0, to: 0, weight: 5), CircuitEdge(from: 0, to: 2, weight: 7)])
        XCTAssertThrowsError(try CircuitWeights(layout: NodeLayout(dModel: 2, nLayer: 1)) { matrices[$0]! })
    }
}
