import Foundation
import XCTest
@testable import SparseGPT

/// Finite-difference checks of every layer's backward on tiny shapes, and of the whole model.
final class GradientCheckTests: XCTestCase {
    var rng = RandomGenerator(seed: 42)

    func randoms(_ n: Int, scale: Double = 1) -> [Float] { (0..<n).map { _ in Float(rng.normal() * scale) } }

    /// Compares `analytic` with central differences of `loss` at every entry of `x` (h relative to 1).
    func check(_ x: [Float], analytic: [Float], h: Float = 1e-2, rtol: Double = 2e-2, atol: Double = 2e-3,
               _ what: String, loss: ([Float]) -> Double, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(x.count, analytic.count, what)
        for i in 0..<x.count {
            var plus = x, minus = x
            plus[i] += h; minus[i] -= h
            let fd = (loss(plus) - loss(minus)) / Double(2 * h)
            let a = Double(analytic[i])
            if abs(fd - a) > atol + rtol * max(abs(fd), abs(a)) {
                XCTFail("\(what)[\(i)]: analytic \(a), finite difference \(fd)", file: file, line: line)
                return
            }
        }
    }

    /// sum(out * weights) in float64: a scalar loss whose gradient with respect to out is `weights`.
    func dot(_ out: [Float], _ weights: [Float]) -> Double { zip(out, weights).reduce(0) { $0 + Double($1.0) * Double($1.1) } }

    func testRMSNormBackward() {
        let rows = 3, d = 8
        let x = randoms(rows * d), gain = randoms(d), r = randoms(rows * d)
        func forward(_ x: [Float], _ gain: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: rows * d), rstd = [Float](repeating: 0, count: rows)
            rmsnormForward(&out, rstd: &rstd, x, gain: gain, rows: rows, d: d)
            return out
        }
        var rstd = [Float](repeating: 0, count: rows), out = [Float](repeating: 0, count: rows * d)
        rmsnormForward(&out, rstd: &rstd, x, gain: gain, rows: rows, d: d)
        var dx = [Float](repeating: 0, count: rows * d), dGain = [Float](repeating: 0, count: d)
        rmsnormBackward(dX: &dx, dGain: &dGain, dOut: r, x, rstd: rstd, gain: gain, rows: rows, d: d)
        check(x, analytic: dx, "rmsnorm dx") { dot(forward($0, gain), r) }
        check(gain, analytic: dGain, "rmsnorm dgain") { dot(forward(x, $0), r) }
    }

    func testLinearBackward() {
        let rows = 4, i = 5, o = 3
        let x = randoms(rows * i), w = randoms(o * i), r = randoms(rows * o)
        func forward(_ x: [Float], _ w: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: rows * o)
            linearForward(&out, x, weight: w, rows: rows, inFeatures: i, outFeatures: o)
            return out
        }
        var dx = [Float](repeating: 0, count: rows * i), dw = [Float](repeating: 0, count: o * i)
        linearBackward(dInput: &dx, dWeight: &dw, dOut: r, x, weight: w, rows: rows, inFeatures: i, outFeatures: o)
        check(x, analytic: dx, "linear dx") { dot(forward($0, w), r) }
        check(w, analytic: dw, "linear dw") { dot(forward(x, $0), r) }
    }

    func testGELUBackward() {
        let x = randoms(20, scale: 2), r = randoms(20)
        func forward(_ x: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: x.count), th = out
            geluForward(&out, tanhOut: &th, x, count: x.count)
            return out
        }
        var out = [Float](repeating: 0, count: x.count), th = out
        geluForward(&out, tanhOut: &th, x, count: x.count)
        for (a, b) in zip(out, x) { XCTAssertEqual(a, 0.5 * b * (1 + tanhf((2 / Float.pi).squareRoot() * (b + 0.044715 * b * b * b))), accuracy: 1e-6) }
        var dx = r
        geluBackward(&dx, x, tanh: th, count: x.count)
        check(x, analytic: dx, h: 1e-3, "gelu dx") { dot(forward($0), r) }
    }

    func testAttentionBackward() {
        let batch = 2, length = 5, d = 32, dHead = 16
        let qkv = randoms(batch * length * 3 * d), r = randoms(batch * length * d)
        func forward(_ qkv: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: batch * length * d), probs = [Float](repeating: 0, count: batch * 2 * length * length)
            attentionForward(&out, probs: &probs, qkv: qkv, batch: batch, length: length, d: d, dHead: dHead, threads: 2)
            return out
        }
        var out = [Float](repeating: 0, count: batch * length * d), probs = [Float](repeating: 0, count: batch * 2 * length * length)
        attentionForward(&out, probs: &probs, qkv: qkv, batch: batch, length: length, d: d, dHead: dHead, threads: 2)
        var dqkv = [Float](repeating: 0, count: qkv.count), scratch = [Float](repeating: 0, count: 2 * length * length)
        attentionBackward(dQKV: &dqkv, dOut: r, probs: probs, qkv: qkv, batch: batch, length: length, d: d, dHead: dHead,
                          threads: 2, scratch: &scratch)
        check(qkv, analytic: dqkv, h: 1e-2, "attention dqkv") { dot(forward($0), r) }
    }

    func testAbsTopKBackwardAwayFromTies() {
        let rows = 3, n = 10, k = 4
        let x = randoms(rows * n), r = randoms(rows * n)
        func forward(_ x: [Float]) -> [Float] {
            var v = x, keep = [UInt8](repeating: 0, count: x.count)
            absTopKForward(&v, keep: &keep, rows: rows, n: n, k: k, scratch: [SelectionScratch(capacity: n)], threads: 1)
            return v
        }
        var v = x, keep = [UInt8](repeating: 0, count: x.count)
        absTopKForward(&v, keep: &keep, rows: rows, n: n, k: k, scratch: [SelectionScratch(capacity: n), SelectionScratch(capacity: n)], threads: 2)
        XCTAssertEqual(keep.map(Int.init).reduce(0, +), rows * k)
        var dx = r
        absTopKBackward(&dx, keep: keep, count: dx.count)
        check(x, analytic: dx, h: 1e-4, "abstopk dx") { dot(forward($0), r) }
    }

    func testCrossEntropyBackward() {
        let rows = 3, vocab = 7
        let logits = randoms(rows * vocab)
        let targets: [Int32] = [1, 6, 0]
        var dl = [Float](repeating: 0, count: logits.count)
        _ = crossEntropy(logits: logits, targets: targets, rows: rows, vocab: vocab, dLogits: &dl)
        check(logits, analytic: dl, h: 1e-2, "cross-entropy dlogits") {
            Double(crossEntropy(logits: $0, targets: targets, rows: rows, vocab: vocab, dLogits: nil))
        }
    }

    /// Whole-model check of parameter and node-mask gradients (afrac 1, and afrac 0.5 away from
    /// selection changes), with weights large enough for the differences to be above float noise.
    func modelCheck(afrac: Double) throws {
        let config = tinyConfig(afrac: afrac, layers: 2)
        var values = initialParameters(config, seed: 3)
        for i in values.indices { values[i] = Float(rng.normal() * 0.3) + (values[i] == 1 ? 1 : 0) }
        let gpt = try GPT(config: config, parameters: values)
        let batch = 2, length = 6
        let x = (0..<(batch * length)).map { _ in Int32(rng.below(config.vocab)) }
        let y = (0..<(batch * length)).map { _ in Int32(rng.below(config.vocab)) }
        let ablation = NodeAblation(mask: (0..<gpt.nodes.count).map { _ in Float(rng.unit() < 0.8 ? 1 : 0) },
                                    mean: randoms(gpt.nodes.count, scale: 0.3))
        func loss(_ params: [Float], _ mask: [Float]) -> Double {
            gpt.parameters.copy(from: params)
            var a = ablation
            a.mask = mask
            try! gpt.forward(tokens: x, batch: batch, length: length, ablation: a)
            return Double(try! gpt.crossEntropy(targets: y))
        }
        _ = loss(values, ablation.mask)
        gpt.backwardFromLoss(parameterGradients: true)
        let grads = gpt.gradients.array, maskGrad = gpt.nodeMaskGradient
        var checked = 0, skipped = 0
        let h: Float = 2e-3
        func probe(_ analytic: Float, _ f: (Float) -> Double, _ what: String) {
            let l0 = f(0), lp = f(h), lm = f(-h)
            let right = (lp - l0) / Double(h), left = (l0 - lm) / Double(h)
            if abs(right - left) > 0.05 * max(abs(right), abs(left)) + 1e-3 { skipped += 1; return }   // a selection flipped
            checked += 1
            let fd = (lp - lm) / Double(2 * h)
            if abs(fd - Double(analytic)) > 5e-3 + 3e-2 * abs(fd) {
                XCTFail("\(what): analytic \(analytic), finite difference \(fd) (afrac \(afrac))")
            }
        }
        for t in gpt.layout.tensors {
            for _ in 0..<4 {
                let i = t.offset + rng.below(t.count)
                probe(grads[i], { e in var p = values; p[i] += e; return loss(p, ablation.mask) }, "d loss / d \(t.name)[\(i - t.offset)]")
            }
        }
        for loc in gpt.nodes.locations {
            for _ in 0..<3 {
                let i = loc.offset + rng.below(loc.size)
                probe(maskGrad[i], { e in var m = ablation.mask; m[i] += e; return loss(values, m) }, "d loss / d mask \(loc.name)[\(i - loc.offset)]")
            }
        }
        XCTAssertGreaterThan(checked, 4 * skipped, "too many probes crossed an AbsTopK selection change")
    }

    func testModelGradientsDenseActivations() throws { try modelCheck(afrac: 1) }
    func testModelGradientsSparseActivations() throws { try modelCheck(afrac: 0.5) }
}
