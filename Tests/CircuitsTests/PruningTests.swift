import Foundation
import SparseGPT
import XCTest
@testable import Circuits

/// A model whose correct-minus-wrong logit margin is z = bias + Σ_i w_i·(m_i·1 + (1 − m_i)·mean_i),
/// so the task loss is softplus(−z) and only nodes with w_i ≠ 0 matter.
final class LinearMarginModel: AblatableModel {
    let nodeLayout = NodeLayout(dModel: 1, nLayer: 1)
    let weights: [Float]
    let bias: Float
    private(set) var calls = 0

    init(useful: [Int: Float], bias: Float) {
        var w = [Float](repeating: 0, count: nodeLayout.count)
        for (i, v) in useful { w[i] = v }
        weights = w
        self.bias = bias
    }

    func taskLoss(_ pairs: TaskPairs, masks: [Float], means: [Float], maskGradient: Bool) throws -> (loss: Float, maskGradient: [Float]?) {
        calls += 1
        var z = bias
        for i in weights.indices { z += weights[i] * (masks[i] + (1 - masks[i]) * means[i]) }
        let loss = log(1 + exp(-z))
        let dz = -1 / (1 + exp(z))
        return (loss, maskGradient ? weights.indices.map { dz * weights[$0] * (1 - means[$0]) } : nil)
    }

    func margin(masks: [Float], means: [Float]) -> Float {
        var z = bias
        for i in weights.indices { z += weights[i] * (masks[i] + (1 - masks[i]) * means[i]) }
        return z
    }

    func logitMargins(_ pairs: TaskPairs, masks: [Float], means: [Float]) throws -> [Float] {
        [Float](repeating: margin(masks: masks, means: means), count: pairs.count)
    }
}

final class PruningTests: XCTestCase {
    func pairs(_ n: Int) throws -> TaskPairs {
        try TaskPairs(width: 2, prompts: [Int32](repeating: 1, count: 4 * n), lengths: [Int32](repeating: 2, count: 2 * n),
                      candidates: (0..<n).flatMap { _ in [Int32(4), 5, 5, 4] })
    }

    func testMaskTrainingKeepsExactlyTheUsefulNodes() throws {
        let model = LinearMarginModel(useful: [2: 3, 7: 3], bias: -2)
        let means = [Float](repeating: 0, count: model.nodeLayout.count)
        var settings = PruningSettings()
        settings.steps = 200
        var last: MaskTrainingStep?
        let tau = try trainMaskLogits(model: model, means: means, pairs: try pairs(4), lambda: 1e-2, settings: settings) { last = $0 }
        XCTAssertEqual(StraightThroughMask.mask(tau).enumerated().filter { $0.element == 1 }.map(\.offset), [2, 7])
        XCTAssertEqual(last?.step, 200)
        XCTAssertEqual(last?.keptNodes, 2)
        XCTAssertEqual(Double(last!.objective), Double(last!.taskLoss) + 0.02, accuracy: 1e-6)
        XCTAssertTrue(tau.allSatisfy { abs($0) <= 1 })
    }

    func testObjectiveGradientIncludesLambdaThroughStraightThroughMask() throws {
        let model = LinearMarginModel(useful: [0: 1], bias: 0)
        let means = [Float](repeating: 0, count: model.nodeLayout.count)
        var settings = PruningSettings()
        settings.steps = 1
        settings.tauNoise = 0   // every τ at exactly 0.1, as the expected gradient assumes
        var first: MaskTrainingStep?
        _ = try trainMaskLogits(model: model, means: means, pairs: try pairs(1), lambda: 0.5, settings: settings) { first = $0 }
        let s = 1 / (1 + exp(-0.1))
        let dz = -1 / (1 + exp(1.0))
        XCTAssertEqual(Double(first!.tauGradient[0]), (dz + 0.5) * s * (1 - s), accuracy: 1e-6)
        XCTAssertEqual(Double(first!.tauGradient[1]), 0.5 * s * (1 - s), accuracy: 1e-6)
    }

    func testBatchesAreSampledBySeedWhenThereAreMorePairsThanTheBatch() throws {
        final class RecordingModel: AblatableModel {
            let nodeLayout = NodeLayout(dModel: 1, nLayer: 1)
            var batches: [[Int32]] = []
            func taskLoss(_ pairs: TaskPairs, masks: [Float], means: [Float], maskGradient: Bool) throws -> (loss: Float, maskGradient: [Float]?) {
                batches.append(pairs.prompts)
                return (0, [Float](repeating: 0, count: nodeLayout.count))
            }
            func logitMargins(_ pairs: TaskPairs, masks: [Float], means: [Float]) throws -> [Float] {
                [Float](repeating: 0, count: pairs.count)
            }
        }
        let distinct = try TaskPairs(width: 1, prompts: (0..<20).map { Int32($0) }, lengths: [Int32](repeating: 1, count: 20),
                                     candidates: (0..<10).flatMap { _ in [Int32(1), 2, 2, 1] })
        var settings = PruningSettings()
        settings.steps = 3
        settings.batchPairs = 4
        let a = RecordingModel(), b = RecordingModel()
        let means = [Float](repeating: 0, count: a.nodeLayout.count)
        _ = try trainMaskLogits(model: a, means: means, pairs: distinct, lambda: 0, settings: settings)
        _ = try trainMaskLogits(model: b, means: means, pairs: distinct, lambda: 0, settings: settings)
        XCTAssertEqual(a.batches, b.batches)
        for batch in a.batches {
            XCTAssertEqual(batch.count, 8)
            for pair in stride(from: 0, to: 8, by: 2) {
                XCTAssertEqual(batch[pair] % 2, 0, "A prompt first")
                XCTAssertEqual(batch[pair + 1], batch[pair] + 1, "B prompt of the same pair next")
            }
        }
        XCTAssertNotEqual(a.batches[0], a.batches[1])
    }

    func testFrontierKeepsSmallestCircuitPerTargetAndReportsUnreachable() throws {
        let model = LinearMarginModel(useful: [2: 3, 7: 3], bias: -2)
        let layout = model.nodeLayout
        let means = [Float](repeating: 0, count: layout.count)
        let unit = { (name: String, r: Int, c: Int) in try WeightMatrix(name: name, rows: r, columns: c, values: [Float](repeating: 1, count: r * c)) }
        let weights = try CircuitWeights(layout: layout) { name in
            switch name {
            case "h.0.attn.c_attn": return try unit(name, 3, 1)
            case "h.0.attn.c_proj": return try unit(name, 1, 1)
            case "h.0.mlp.c_fc": return try unit(name, 4, 1)
            case "h.0.mlp.c_proj": return try unit(name, 1, 4)
            default: return try unit(name, 8, 1)
            }
        }
        var settings = FrontierSettings()
        settings.lambdas = [0, 1e-2]
        settings.targets = [0.01, 0.15, 0.5]
        settings.pruning.steps = 200
        settings.calibration = false
        settings.lambdaExtensions = 0
        let data = TaskData(task: "toy", train: try pairs(4), test: try pairs(2))
        let frontier = try pruneFrontier(model: model, weights: weights, means: means, data: data, settings: settings)
        XCTAssertEqual(Double(frontier.fullLoss), log(1 + exp(-4.0)), accuracy: 1e-6)
        XCTAssertNil(frontier.point(at: 0.01)?.circuit, "full loss 0.018 misses 0.01: unreachable, not size 0")
        let circuit = try XCTUnwrap(frontier.point(at: 0.15)?.circuit)
        XCTAssertEqual(circuit.k, 2)
        XCTAssertEqual(circuit.lambda, 0, "λ = 0 also ranks the useful nodes first; equal sizes keep the first λ")
        XCTAssertEqual(circuit.keep.enumerated().filter(\.element).map(\.offset), [2, 7])
        // Node 2 is layer 0's k channel, node 7 an MLP neuron: no weight joins two kept nodes.
        XCTAssertEqual(circuit.edgeCount, 0)
        XCTAssertEqual(frontier.runs.count, 2)
        XCTAssertEqual(frontier.runs[1].circuits[0.15]?.k, 2)
        XCTAssertEqual(frontier.runs[0].tau.filter { $0 > 0 }.count, layout.count, "without λ no node is pushed out")
        XCTAssertEqual(frontier.runs[1].tau.filter { $0 > 0 }.count, 2)
        XCTAssertEqual(frontier.runs[1].trainedNodes, 2)
        XCTAssertEqual(Double(frontier.runs[1].trainedLoss), log(1 + exp(-4.0)), accuracy: 1e-6)
        XCTAssertEqual(frontier.runs[1].trainedEdges, 0)
        XCTAssertEqual(frontier.runs[0].trainedNodes, layout.count)

        let document = CircuitDocument(point: frontier.point(at: 0.15)!, task: "toy", fullLoss: frontier.fullLoss,
                                       layout: layout, means: means, candidateTokens: [4, 5], model: "toy.safetensors")
        let json = try JSONSerialization.jsonObject(with: document.jsonData()) as! [String: Any]
        XCTAssertEqual(json["reachable"] as? Bool, true)
        XCTAssertEqual(json["node_count"] as? Int, 2)
        XCTAssertEqual(json["edge_count"] as? Int, 0)
        let locations = json["locations"] as! [[String: Any]]
        XCTAssertEqual(locations.first { $0["name"] as? String == "0.k" }?["kept"] as? [[String: Double]], [["index": 0, "mean": 0]])
        let missing = CircuitDocument(point: frontier.point(at: 0.01)!, task: "toy", fullLoss: frontier.fullLoss,
                                      layout: layout, means: means, candidateTokens: [4, 5])
        let missingJSON = try JSONSerialization.jsonObject(with: missing.jsonData()) as! [String: Any]
        XCTAssertEqual(missingJSON["reachable"] as? Bool, false)
        XCTAssertNil(missingJSON["edge_count"])
        XCTAssertNil(missingJSON["node_count"])
        let whole = try FrontierDocument(frontier: frontier, layout: layout, means: means, candidateTokens: [4, 5]).jsonData()
        XCTAssertEqual(try JSONDecoder().decode(FrontierDocument.self, from: whole).points.count, 3)
    }

    func testPairsValidationAndFileRoundTrip() throws {
        XCTAssertThrowsError(try TaskPairs(width: 2, prompts: [1, 2, 3], lengths: [2, 1], candidates: [1, 2, 2, 1]))
        XCTAssertThrowsError(try TaskPairs(width: 2, prompts: [1, 2], lengths: [2], candidates: [1, 2]), "odd prompt count")
        XCTAssertThrowsError(try TaskPairs(width: 2, prompts: [1, 2, 3, 4], lengths: [3, 1], candidates: [1, 2, 2, 1]))
        XCTAssertThrowsError(try TaskPairs(width: 2, prompts: [1, 2, 3, 4], lengths: [2, 1], candidates: [1, 1, 2, 1]))

        let train = try TaskPairs(width: 3, prompts: [1, 2, 3, 4, 5, 0], lengths: [3, 2], candidates: [7, 8, 8, 7])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("circuits-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("pairs.json")
        try TaskPairsFile.save([TaskData(task: "t", train: train, test: train)], tokenizerHash: nil, to: file)
        XCTAssertEqual(try TaskPairsFile.load(file), [TaskData(task: "t", train: train, test: train)])
        XCTAssertEqual(train.selecting(pairs: [0]).width, 3)

        try Data(#"{"t": {"train": {"width": 2, "prompts": [[1, 2], [3, 0]], "lengths": [2, 1], "candidates": [1, 2, 2, 1]}}}"#.utf8).write(to: file)
        XCTAssertThrowsError(try TaskPairsFile.load(file)) { error in
            XCTAssertTrue("\(error)".contains("pairs.json") && "\(error)".contains("test"), "\(error)")
        }
        try Data(#"{"t": {"train": {"width": 2, "prompts": [[1, 2], [3]], "lengths": [2, 1], "candidates": [1, 2, 2, 1]}, "test": {"width": 1, "prompts": [[1], [2]], "lengths": [1, 1], "candidates": [1, 2, 2, 1]}}}"#.utf8).write(to: file)
        XCTAssertThrowsError(try TaskPairsFile.load(file)) { error in
            XCTAssertTrue("\(error)".contains("train") && "\(error)".contains("prompts[1]"), "\(error)")
        }
        try Data(#"{"t": {"train": {"width": 1, "prompts": [[1], [2]], "lengths": [1, 1], "candidates": [1, 2, 2, 2]}, "test": {"width": 1, "prompts": [[1], [2]], "lengths": [1, 1], "candidates": [1, 2, 2, 1]}}}"#.utf8).write(to: file)
        XCTAssertThrowsError(try TaskPairsFile.load(file)) { error in
            XCTAssertTrue("\(error)".contains("task t, train") && "\(error)".contains("prompt 1"), "\(error)")
        }
    }
}
