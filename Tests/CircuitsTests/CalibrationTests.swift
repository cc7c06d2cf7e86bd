import Foundation
import SparseGPT
import XCTest
@testable import Circuits

/// The calibration fit (scale ≥ 0 and shift of the candidate logit difference) and the margins it reads.
final class CalibrationTests: XCTestCase {
    /// Margins that carry the answer with noise and a bias toward the lower-id token.
    func noisyMargins(count: Int, signal: Double, bias: Double, noise: Double, seed: UInt64) -> ([Float], [Float]) {
        var random = SplitMix64(seed: seed)
        let orientations: [Float] = (0..<count).map { $0 % 2 == 0 ? 1 : -1 }
        let margins = orientations.map { s in Float(signal + bias * Double(s) + noise * Double(random.nextGaussian())) }
        return (margins, orientations)
    }

    /// The minimum over a grid of (scale ≥ 0, shift), refined twice around the best cell.
    func bruteForce(_ margins: [Float], _ orientations: [Float]) -> (scale: Double, shift: Double, loss: Double) {
        let objective = CalibrationObjective(margins: margins, orientations: orientations)
        var center = (a: 5.0, b: 0.0), half = (a: 5.0, b: 10.0)
        var best = (scale: 1.0, shift: 0.0, loss: objective.value(1, 0))
        for _ in 0..<3 {
            for i in 0...120 {
                for j in 0...120 {
                    let a = max(0, center.a - half.a + 2 * half.a * Double(i) / 120)
                    let b = center.b - half.b + 2 * half.b * Double(j) / 120
                    let f = objective.value(a, b)
                    if f < best.loss { best = (a, b, f) }
                }
            }
            center = (best.scale, best.shift)
            half = (half.a / 20, half.b / 20)
        }
        return best
    }

    func testFitMatchesBruteForceOnToyMargins() {
        for (seed, signal, bias, noise) in [(UInt64(1), 0.3, 0.2, 1.0), (2, 0.05, -0.4, 0.5), (3, 2.0, 0.0, 3.0)] {
            let (margins, orientations) = noisyMargins(count: 64, signal: signal, bias: bias, noise: noise, seed: seed)
            let fitted = LogitCalibration.fit(margins: margins, orientations: orientations)
            let brute = bruteForce(margins, orientations)
            let loss = Double(CalibrationObjective(margins: margins, orientations: orientations)
                .value(Double(fitted.scale), Double(fitted.shift)))
            XCTAssertEqual(loss, brute.loss, accuracy: 1e-6, "seed \(seed)")
            XCTAssertEqual(Double(fitted.scale), brute.scale, accuracy: 2e-3 * max(1, brute.scale), "seed \(seed)")
            XCTAssertEqual(Double(fitted.shift), brute.shift, accuracy: 2e-3 * max(1, abs(brute.shift)), "seed \(seed)")
            XCTAssertNotEqual(fitted, .identity, "these margins are not calibrated to begin with")
        }
    }

    func testFitNeverRaisesTheLossOnItsFitSet() {
        var cases: [([Float], [Float])] = []
        for seed in UInt64(0)..<20 {
            var random = SplitMix64(seed: seed)
            let signal = 4 * Double(random.nextGaussian()), bias = Double(random.nextGaussian()), noise = 0.01 + 3 * random.nextUniform()
            cases.append(noisyMargins(count: 2 + Int(random.next() % 60), signal: signal, bias: bias, noise: noise, seed: seed + 100))
        }
        cases.append(([Float](repeating: 0, count: 8), [1, -1, 1, -1, 1, -1, 1, -1]))          // no signal at all
        cases.append(([3, 3, 3, 3], [1, -1, 1, -1]))                                            // separable
        cases.append(([-40, 25, -60, 80], [1, 1, -1, -1]))                                      // huge margins
        for (margins, orientations) in cases {
            let identity = LogitCalibration.identity.loss(margins: margins, orientations: orientations)
            let fitted = LogitCalibration.fit(margins: margins, orientations: orientations)
            XCTAssertLessThanOrEqual(fitted.loss(margins: margins, orientations: orientations), identity, "\(margins)")
            XCTAssertGreaterThanOrEqual(fitted.scale, 0)
        }
    }

    func testScaleStaysNonNegativeAndShiftCannotAnswerForTheCircuit() {
        // A circuit that argues for the wrong answer: the best it may do is no signal, log 2 on balanced pairs.
        let (wrong, orientations) = noisyMargins(count: 32, signal: -2, bias: 0, noise: 0.5, seed: 9)
        let fitted = LogitCalibration.fit(margins: wrong, orientations: orientations)
        XCTAssertEqual(fitted.scale, 0)
        XCTAssertEqual(Double(fitted.loss(margins: wrong, orientations: orientations)), log(2), accuracy: 1e-6)
        // Equal margins on balanced pairs: the shift favours one token, which half the prompts want.
        let flat = LogitCalibration.fit(margins: [Float](repeating: 1.5, count: 8), orientations: [1, -1, 1, -1, 1, -1, 1, -1])
        XCTAssertLessThan(flat.loss(margins: [Float](repeating: 1.5, count: 8), orientations: [1, -1, 1, -1, 1, -1, 1, -1]), 0.01,
                          "a margin that is right on every prompt is a good circuit once scaled")
        XCTAssertEqual(Double(flat.shift), 0, accuracy: 1e-6)
    }

    func testScaleIsBoundedByTheFullModelsMargins() {
        // Fit pairs the margins separate: unbounded, the scale grows until the step count stops it,
        // and one test prompt with the wrong sign then costs more than the uncalibrated loss.
        let orientations: [Float] = (0..<64).map { $0 % 2 == 0 ? 1 : -1 }
        let fitMargins = orientations.enumerated().map { Float(4 + ($0.offset % 5)) }
        var testMargins = fitMargins
        testMargins[7] = -6
        let uncalibrated = LogitCalibration.identity.loss(margins: testMargins, orientations: orientations)
        let unbounded = LogitCalibration.fit(margins: fitMargins, orientations: orientations)
        XCTAssertGreaterThan(unbounded.scale, 4)
        XCTAssertGreaterThan(unbounded.loss(margins: testMargins, orientations: orientations), 3 * uncalibrated)
        // The full model itself may not be scaled up: its bound is 1.
        let full = LogitCalibration.fit(margins: fitMargins, orientations: orientations,
                                        maxScale: LogitCalibration.maxScale(margins: fitMargins, matching: fitMargins))
        XCTAssertEqual(full.scale, 1)
        XCTAssertLessThan(full.loss(margins: testMargins, orientations: orientations), uncalibrated * 1.01)
        // A circuit with a quarter of the full model's signal is scaled back up to it, not past it.
        let weak = fitMargins.map { $0 / 4 }
        let bound = LogitCalibration.maxScale(margins: weak, matching: fitMargins)
        XCTAssertEqual(bound, 4, accuracy: 1e-6)
        let circuit = LogitCalibration.fit(margins: weak, orientations: orientations, maxScale: bound)
        XCTAssertEqual(Double(circuit.scale), 4, accuracy: 1e-5)
        XCTAssertLessThan(circuit.loss(margins: weak, orientations: orientations),
                          LogitCalibration.identity.loss(margins: weak, orientations: orientations))
        // A circuit with more signal than the full model keeps the identity feasible.
        XCTAssertEqual(LogitCalibration.maxScale(margins: fitMargins.map { $0 * 3 }, matching: fitMargins), 1)
        XCTAssertEqual(LogitCalibration.maxScale(margins: [0, 0], matching: [1, 1]), 1)
    }

    func testOrientationIsTheLowerIdCandidate() throws {
        let pairs = try TaskPairs(width: 1, prompts: [1, 2, 3, 4], lengths: [1, 1, 1, 1], candidates: [4, 9, 9, 4, 7, 2, 2, 7])
        XCTAssertEqual(pairs.candidateOrientations, [1, -1, -1, 1])
    }

    /// The margins of the engine's full forward give the task path's loss, with and without ablation
    /// and with any number of engines.
    func testPrunableGPTMarginsAgreeWithTheTaskLoss() throws {
        let golden = try GoldenPrune.load()
        let config = ModelConfig(vocab: 64, context: 16, dModel: 32, nLayer: 2, afrac: 0.25)
        let parameters = ParameterLayout(config).tensors.flatMap { golden.floats["model." + $0.name]! }
        let single = PrunableGPT(model: try GPT(config: config, parameters: parameters), chunkPrompts: 5)
        let shared = PrunableGPT(model: try GPT(config: config, parameters: parameters),
                                 replicas: [try GPT(config: config, parameters: parameters)], chunkPrompts: 5)
        let pairs = try golden.pairs, means = golden.floats["means"]!
        var masks = [Float](repeating: 1, count: 736)
        for i in stride(from: 2, to: 736, by: 5) { masks[i] = 0 }
        for m in [[Float](repeating: 1, count: 736), masks] {
            let margins = try single.logitMargins(pairs, masks: m, means: means)
            XCTAssertEqual(margins.count, pairs.count)
            let loss = try single.taskLoss(pairs, masks: m, means: means, maskGradient: false).loss
            let fromMargins = LogitCalibration.identity.loss(margins: margins, orientations: pairs.candidateOrientations)
            XCTAssertEqual(fromMargins, loss, accuracy: 1e-4 * max(1, loss))
            XCTAssertEqual(PromptSides(margins: margins).loss, Double(loss), accuracy: 1e-4 * max(1, Double(loss)))
            XCTAssertEqual(try shared.logitMargins(pairs, masks: m, means: means), margins)
        }
    }
}
