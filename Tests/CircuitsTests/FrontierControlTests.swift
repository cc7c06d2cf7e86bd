import Foundation
import SparseGPT
import XCTest
@testable import Circuits

/// Calibrated scoring, necessity, mask collapse and τ initialisations of a frontier, on linear toy models.
final class FrontierControlTests: XCTestCase {
    let layout = NodeLayout(dModel: 1, nLayer: 1)

    func pairs(_ n: Int) throws -> TaskPairs {
        try TaskPairs(width: 2, prompts: [Int32](repeating: 1, count: 4 * n), lengths: [Int32](repeating: 2, count: 2 * n),
                      candidates: (0..<n).flatMap { _ in [Int32(4), 5, 5, 4] })
    }

    /// Every weight 1 (the toy's edges are irrelevant here).
    func unitWeights() throws -> CircuitWeights {
        let unit = { (name: String, r: Int, c: Int) in try WeightMatrix(name: name, rows: r, columns: c, values: [Float](repeating: 1, count: r * c)) }
        return try CircuitWeights(layout: layout) { name in
            switch name {
            case "h.0.attn.c_attn": return try unit(name, 3, 1)
            case "h.0.attn.c_proj": return try unit(name, 1, 1)
            case "h.0.mlp.c_fc": return try unit(name, 4, 1)
            case "h.0.mlp.c_proj": return try unit(name, 1, 4)
            default: return try unit(name, 8, 1)
            }
        }
    }

    func settings(calibration: Bool) -> FrontierSettings {
        var settings = FrontierSettings()
        settings.lambdas = [1e-2]
        settings.targets = [0.15]
        settings.pruning.steps = 200
        settings.pruning.tauNoise = 0   // equal τ, so that ties decide which useful node is kept
        settings.calibration = calibration
        settings.lambdaExtensions = 0
        return settings
    }

    func testCalibrationFindsTheSmallerCircuitWhoseMarginIsRightButSmall() throws {
        // Margin −2 + 3 per useful node: one node gives margin 1 (loss 0.31), both give 4 (loss 0.018).
        let model = LinearMarginModel(useful: [2: 3, 7: 3], bias: -2)
        let means = [Float](repeating: 0, count: layout.count)
        let data = TaskData(task: "toy", train: try pairs(4), test: try pairs(2))
        let plain = try pruneFrontier(model: model, weights: try unitWeights(), means: means, data: data,
                                      settings: settings(calibration: false))
        let calibrated = try pruneFrontier(model: model, weights: try unitWeights(), means: means, data: data,
                                           settings: settings(calibration: true))
        XCTAssertEqual(plain.point(at: 0.15)?.circuit?.k, 2)
        XCTAssertNil(plain.point(at: 0.15)?.circuit?.calibration)
        let circuit = try XCTUnwrap(calibrated.point(at: 0.15)?.circuit)
        XCTAssertEqual(circuit.k, 1, "margin 1 on every prompt is the right answer once scaled")
        XCTAssertEqual(circuit.keep.enumerated().filter(\.element).map(\.offset), [2], "ties go to the lower index")
        XCTAssertGreaterThan(try XCTUnwrap(circuit.calibration).scale, 1)
        XCTAssertLessThan(circuit.loss, 0.15)
        XCTAssertEqual(calibrated.fullLoss, plain.fullLoss, "the full model's own loss stays uncalibrated")
        XCTAssertLessThan(try XCTUnwrap(calibrated.calibratedFullLoss), calibrated.fullLoss)
        XCTAssertNil(plain.calibratedFullLoss)
        // Node 7 alone still gives margin 1: calibrated (scaled back to the full model's margin 4, no
        // further) the circuit is not necessary; uncalibrated it loses 0.31.
        let point = try XCTUnwrap(calibrated.point(at: 0.15))
        XCTAssertEqual(Double(try XCTUnwrap(point.necessityLoss)), log(1 + exp(-4.0)), accuracy: 1e-4)
        XCTAssertEqual(Double(try XCTUnwrap(point.uncalibratedNecessityLoss)), log(1 + exp(-1.0)), accuracy: 1e-5)
        XCTAssertNil(plain.point(at: 0.15)?.uncalibratedNecessityLoss)
    }

    func testNecessityIsTheLossWithOnlyTheCircuitAblated() throws {
        let model = LinearMarginModel(useful: [2: 3, 7: 3, 9: 0.5], bias: -2)
        let means = [Float](repeating: 0, count: layout.count)
        let data = TaskData(task: "toy", train: try pairs(4), test: try pairs(2))
        let frontier = try pruneFrontier(model: model, weights: try unitWeights(), means: means, data: data,
                                         settings: settings(calibration: false))
        let point = try XCTUnwrap(frontier.point(at: 0.15))
        XCTAssertEqual(point.circuit?.keep.enumerated().filter(\.element).map(\.offset), [2, 7])
        // Without nodes 2 and 7 the margin is −2 + 0.5.
        XCTAssertEqual(Double(try XCTUnwrap(point.necessityLoss)), log(1 + exp(1.5)), accuracy: 1e-5)
        let document = CircuitDocument(point: point, task: "toy", fullLoss: frontier.fullLoss, layout: layout, means: means,
                                       candidateTokens: [4, 5])
        let json = try JSONSerialization.jsonObject(with: document.jsonData()) as! [String: Any]
        XCTAssertEqual(json["necessity_loss"] as? Double ?? 0, log(1 + exp(1.5)), accuracy: 1e-5)
        XCTAssertEqual(json["status"] as? String, "reachable")
    }

    func testMasksThatNeedMostOfTheModelAreCollapsedNeverASize() throws {
        // Every node adds 1 to a margin of −9: only 11 of the 12 nodes reach loss 0.15.
        let model = LinearMarginModel(useful: Dictionary(uniqueKeysWithValues: (0..<12).map { ($0, Float(1)) }), bias: -9)
        let means = [Float](repeating: 0, count: layout.count)
        let data = TaskData(task: "toy", train: try pairs(4), test: try pairs(2))
        var collapsing = settings(calibration: false)
        collapsing.lambdas = [1e-2, 3e-2]
        collapsing.targets = [0.15, 0.5]
        let frontier = try pruneFrontier(model: model, weights: try unitWeights(), means: means, data: data, settings: collapsing)
        XCTAssertEqual(frontier.collapseNodes, 6)
        let point = try XCTUnwrap(frontier.point(at: 0.15))
        XCTAssertEqual(point.status, .collapsed)
        XCTAssertNil(point.circuit)
        XCTAssertNil(point.necessityLoss)
        XCTAssertEqual(point.collapsedCircuit?.k, 11)
        // Loss 0.5 needs margin 0.43: 10 nodes, still collapsed. Each λ is retried once from a new initialisation.
        XCTAssertEqual(frontier.point(at: 0.5)?.status, .collapsed)
        XCTAssertEqual(frontier.runs.map(\.lambda), [1e-2, 3e-2, 1e-2, 3e-2])
        XCTAssertEqual(frontier.runs.map(\.initialization), [0, 0, 1, 1])
        XCTAssertNotEqual(frontier.runs[0].tau, frontier.runs[2].tau, "the retry starts from other τ")

        let document = CircuitDocument(point: point, task: "toy", fullLoss: frontier.fullLoss, layout: layout, means: means,
                                       candidateTokens: [4, 5])
        let json = try JSONSerialization.jsonObject(with: document.jsonData()) as! [String: Any]
        XCTAssertEqual(json["status"] as? String, "collapsed")
        XCTAssertEqual(json["reachable"] as? Bool, false)
        XCTAssertNil(json["node_count"])
        XCTAssertNil(json["edge_count"])
        XCTAssertEqual(json["collapsed_node_count"] as? Int, 11)

        // The same circuit under a looser criterion is a circuit; with no retries only the λ runs exist.
        collapsing.collapseFraction = 0.95
        collapsing.collapseRetries = 0
        let loose = try pruneFrontier(model: model, weights: try unitWeights(), means: means, data: data, settings: collapsing)
        XCTAssertEqual(loose.point(at: 0.15)?.status, .reachable)
        XCTAssertEqual(loose.point(at: 0.15)?.circuit?.k, 11)
        XCTAssertEqual(loose.runs.count, 2)
        XCTAssertEqual(try FrontierDocument(frontier: frontier, layout: layout, means: means, candidateTokens: [4, 5])
            .points.map(\.status), [.collapsed, .collapsed])
    }

    func testTheGridGrowsPastAnEndThatHoldsTheSmallestCircuit() throws {
        let model = LinearMarginModel(useful: [2: 3, 7: 3], bias: -2)
        let means = [Float](repeating: 0, count: layout.count)
        let data = TaskData(task: "toy", train: try pairs(4), test: try pairs(2))
        var extending = settings(calibration: false)
        extending.lambdas = [3e-2]
        extending.lambdaExtensions = 2
        let frontier = try pruneFrontier(model: model, weights: try unitWeights(), means: means, data: data, settings: extending)
        // Every λ finds the same two nodes and equal sizes keep the first run: 3e-2 is best, so the
        // grid grows up once (9e-2, not 0.089999996, is not better), then down once (3e-2 is
        // still the bottom's best).
        XCTAssertEqual(frontier.runs.map(\.lambda), [3e-2, 9e-2, 1e-2])
        XCTAssertEqual(frontier.runs.map { $0.circuits[0.15]?.k }, [2, 2, 2])
        XCTAssertEqual(frontier.point(at: 0.15)?.circuit?.lambda, 3e-2)

        // A grid of two λ whose smaller one holds the circuit grows downward only, and stops at λ 0.
        extending.lambdas = [0, 1e-2]
        let fromZero = try pruneFrontier(model: model, weights: try unitWeights(), means: means, data: data, settings: extending)
        XCTAssertEqual(fromZero.runs.map(\.lambda), [0, 1e-2], "λ 0 holds the circuit (first of equal sizes) and has no smaller λ")

        extending.lambdaExtensions = -1
        XCTAssertThrowsError(try extending.validate())
    }

    func testSeveralTauInitialisationsPerLambdaKeepTheSmallestCircuit() throws {
        let model = LinearMarginModel(useful: [2: 3, 7: 3], bias: -2)
        let means = [Float](repeating: 0, count: layout.count)
        let data = TaskData(task: "toy", train: try pairs(4), test: try pairs(2))
        var several = settings(calibration: false)
        several.lambdas = [0, 1e-2]
        several.tauInitializations = 3
        let frontier = try pruneFrontier(model: model, weights: try unitWeights(), means: means, data: data, settings: several)
        XCTAssertEqual(frontier.runs.map(\.lambda), [0, 0, 0, 1e-2, 1e-2, 1e-2])
        XCTAssertEqual(frontier.runs.map(\.initialization), [0, 1, 2, 0, 1, 2])
        XCTAssertEqual(several.pruning(initialization: 0), several.pruning)
        XCTAssertEqual(several.pruning(initialization: 2).seed, several.pruning.seed + 2)
        XCTAssertEqual(several.pruning(initialization: 2).tauNoise, FrontierSettings.reinitializationNoise)
        XCTAssertNotEqual(frontier.runs[0].tau, frontier.runs[1].tau)
        let smallest = frontier.runs.compactMap { $0.circuits[0.15] }.map(\.edgeCount).min()
        XCTAssertEqual(frontier.point(at: 0.15)?.circuit?.edgeCount, smallest)
        XCTAssertThrowsError(try { var bad = several; bad.tauInitializations = 0; try bad.validate() }())
    }

    func testDocumentNamesHeadsCandidateTextsAndModel() throws {
        let wide = NodeLayout(dModel: 4, nLayer: 1)
        var keep = [Bool](repeating: false, count: wide.count)
        for channel in [1, 3] { keep[wide.location(layer: 0, "q").offset + channel] = true }
        keep[wide.location(layer: 0, "attn_out").offset + 2] = true
        let circuit = Circuit(task: "t", lambda: 1e-3, target: 0.15, k: 3, keep: keep, loss: 0.1,
                              calibration: LogitCalibration(scale: 2, shift: -0.5), edges: [], trace: [(3, 0.1)])
        let point = Frontier.Point(target: 0.15, status: .reachable, circuit: circuit, collapsedCircuit: nil, necessityLoss: 1.2,
                                   uncalibratedNecessityLoss: 2.5)
        let document = CircuitDocument(point: point, task: "t", fullLoss: 0.01, calibratedFullLoss: 0.005, layout: wide,
                                       means: [Float](repeating: 0, count: wide.count), candidateTokens: [7, 9],
                                       candidateTexts: ["'", "\""], dHead: 2, model: "d0.25-w64-a0.25-s0")
        let json = try JSONSerialization.jsonObject(with: document.jsonData()) as! [String: Any]
        XCTAssertEqual(json["model"] as? String, "d0.25-w64-a0.25-s0")
        XCTAssertEqual(json["candidate_texts"] as? [String], ["'", "\""])
        XCTAssertEqual(json["candidate_tokens"] as? [Int], [7, 9])
        XCTAssertEqual((json["calibration"] as? [String: Double])?["scale"], 2)
        XCTAssertEqual(json["uncalibrated_necessity_loss"] as? Double, 2.5)
        let locations = Dictionary(uniqueKeysWithValues: (json["locations"] as! [[String: Any]]).map { ($0["name"] as! String, $0) })
        XCTAssertEqual(locations["0.q"]?["heads"] as? [Int], [0, 1])
        XCTAssertEqual((locations["0.q"]?["kept"] as? [[String: Any]])?.map { $0["head"] as? Int }, [0, 1])
        XCTAssertEqual(locations["0.k"]?["heads"] as? [Int], [])
        XCTAssertNil(locations["0.attn_out"]?["heads"], "attention output channels live in the residual basis, not in heads")
        XCTAssertNil((locations["0.attn_out"]?["kept"] as? [[String: Any]])?.first?["head"])
        XCTAssertEqual(try JSONDecoder().decode(CircuitDocument.self, from: document.jsonData()), document)
    }
}
