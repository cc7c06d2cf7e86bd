import COpenBLAS
import Foundation

/// Forward/backward pairs of the model's layers over flat row-major Float buffers (llm.c style).
/// `rows` is batch * length. Backward functions accumulate (+=) into input gradients unless noted.

typealias FloatPointer = UnsafeMutablePointer<Float>

/// Runs body(chunk) for chunk in 0..<chunks on up to `threads` threads. The partition of work into
/// chunks is fixed by the caller, so results do not depend on scheduling.
@inline(__always)
func parallelFor(_ chunks: Int, threads: Int, _ body: (Int) -> Void) {
    if threads <= 1 || chunks <= 1 {
        for c in 0..<chunks { body(c) }
    } else {
        DispatchQueue.concurrentPerform(iterations: chunks, execute: body)
    }
}

/// Splits 0..<n into `parts` contiguous ranges.
@inline(__always)
func chunkRange(_ n: Int, parts: Int, _ i: Int) -> Range<Int> {
    let lo = n * i / parts, hi = n * (i + 1) / parts
    return lo..<hi
}

// MARK: - embedding

func embeddingForward(_ out: FloatPointer, tokens: UnsafePointer<Int32>, wte: UnsafePointer<Float>, wpe: UnsafePointer<Float>,
                      batch: Int, length: Int, d: Int) {
    for b in 0..<batch {
        for t in 0..<length {
            let o = out + (b * length + t) * d
            let e = wte + Int(tokens[b * length + t]) * d, p = wpe + t * d
            for i in 0..<d { o[i] = e[i] + p[i] }
        }
    }
}

func embeddingBackward(dWte: FloatPointer, dWpe: FloatPointer, dOut: UnsafePointer<Float>, tokens: UnsafePointer<Int32>,
                       batch: Int, length: Int, d: Int) {
    for b in 0..<batch {
        for t in 0..<length {
            let g = dOut + (b * length + t) * d
            let e = dWte + Int(tokens[b * length + t]) * d, p = dWpe + t * d
            for i in 0..<d { e[i] += g[i]; p[i] += g[i] }
        }
    }
}

// MARK: - RMSNorm: y = x * rsqrt(mean(x^2) + eps) * g

let rmsEps: Float = 1e-5

func rmsnormForward(_ out: FloatPointer, rstd: FloatPointer, _ x: UnsafePointer<Float>, gain: UnsafePointer<Float>, rows: Int, d: Int) {
    for r in 0..<rows {
        let xr = x + r * d, o = out + r * d
        var ss: Float = 0
        for i in 0..<d { ss += xr[i] * xr[i] }
        let s = 1 / (ss / Float(d) + rmsEps).squareRoot()
        rstd[r] = s
        for i in 0..<d { o[i] = xr[i] * s * gain[i] }
    }
}

/// dX += dNorm backward; dGain += (optional).
func rmsnormBackward(dX: FloatPointer, dGain: FloatPointer?, dOut: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                     rstd: UnsafePointer<Float>, gain: UnsafePointer<Float>, rows: Int, d: Int) {
    for r in 0..<rows {
        let xr = x + r * d, g = dOut + r * d, dx = dX + r * d
        let s = rstd[r]
        var dot: Float = 0
        for i in 0..<d { dot += g[i] * gain[i] * xr[i] }
        let coef = dot * s * s * s / Float(d)
        for i in 0..<d { dx[i] += g[i] * gain[i] * s - xr[i] * coef }
        if let dGain {
            for i in 0..<d { dGain[i] += g[i] * xr[i] * s }
        }
    }
}

// MARK: - linear (no bias): out[r, o] = sum_i in[r, i] w[o, i], w is (out, in) row-major

func linearForward(_ out: FloatPointer, _ input: UnsafePointer<Float>, weight: UnsafePointer<Float>, rows: Int, inFeatures: Int, outFeatures: Int) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(outFeatures), Int32(inFeatures),
                1, input, Int32(inFeatures), weight, Int32(inFeatures), 0, out, Int32(outFeatures))
}

/// dInput = dOut @ W (overwritten); dWeight += dOut^T @ input when dWeight is given.
func linearBackward(dInput: FloatPointer?, dWeight: FloatPointer?, dOut: UnsafePointer<Float>, _ input: UnsafePointer<Float>,
                    weight: UnsafePointer<Float>, rows: Int, inFeatures: Int, outFeatures: Int) {
    if let dInput {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(inFeatures), Int32(outFeatures),
                    1, dOut, Int32(outFeatures), weight, Int32(inFeatures), 0, dInput, Int32(inFeatures))
    }
    if let dWeight {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(outFeatures), Int32(inFeatures), Int32(rows),
                    1, dOut, Int32(outFeatures), input, Int32(inFeatures), 1, dWeight, Int32(inFeatures))
    }
}

// MARK: - GELU, tanh form

private let geluScale: Float = (2 / Float.pi).squareRoot()

/// gelu(x) = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3); keeps tanh(u) for the backward.
/// tanh(u) = 1 - 2 / (exp(2u) + 1): one expf instead of tanhf.
func geluForward(_ out: FloatPointer, tanhOut: FloatPointer, _ x: UnsafePointer<Float>, count: Int) {
    for i in 0..<count {
        let v = x[i]
        let u = geluScale * (v + 0.044715 * v * v * v)
        let th = 1 - 2 / (expf(2 * u) + 1)
        tanhOut[i] = th
        out[i] = 0.5 * v * (1 + th)
    }
}

/// dX = dOut * gelu'(x), in place on dOut, from the forward's tanh values.
func geluBackward(_ dOut: FloatPointer, _ x: UnsafePointer<Float>, tanh: UnsafePointer<Float>, count: Int) {
    for i in 0..<count {
        let v = x[i], th = tanh[i]
        let grad = 0.5 * (1 + th) + 0.5 * v * (1 - th * th) * geluScale * (1 + 3 * 0.044715 * v * v)
        dOut[i] *= grad
    }
}

// MARK: - AbsTopK along rows of length n: keep the k largest |x|, zero the rest

/// In place on `x` (rows x n); records the kept entries in `keep`. One scratch per part of the rows.
func absTopKForward(_ x: FloatPointer, keep: UnsafeMutablePointer<UInt8>, rows: Int, n: Int, k: Int,
                    scratch: [SelectionScratch], threads: Int) {
    let parts = max(1, min(scratch.count, rows))
    parallelFor(parts, threads: threads) { part in
        let s = scratch[part]
        for r in chunkRange(rows, parts: parts, part) {
            let row = x + r * n, kr = keep + r * n
            for i in 0..<n { s.keys[i] = magnitudeKey(row[i]) }
            selectTopKeys(s.keys, n, k, keep: kr, histogram: s.histogram, buffer: s.buffer)
            for i in 0..<n { row[i] = kr[i] != 0 ? row[i] : 0 }
        }
    }
}

/// dX = dOut * keep, in place.
func absTopKBackward(_ dOut: FloatPointer, keep: UnsafePointer<UInt8>, count: Int) {
    for i in 0..<count where keep[i] == 0 { dOut[i] = 0 }
}

// MARK: - causal attention over qkv (rows x 3d: q, k, v), heads of dHead channels (a multiple of 8)

typealias Lanes = SIMD8<Float>

@inline(__always) func loadLanes(_ p: UnsafePointer<Float>) -> Lanes { UnsafeRawPointer(p).loadUnaligned(as: Lanes.self) }
@inline(__always) func storeLanes(_ v: Lanes, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: Lanes.self) }

@inline(__always)
func dotLanes(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, chunks: Int) -> Float {
    var acc = loadLanes(a) * loadLanes(b)
    for c in 1..<max(chunks, 1) { acc += loadLanes(a + 8 * c) * loadLanes(b + 8 * c) }
    return acc.sum()
}

/// y += w * x over chunks of 8 lanes.
@inline(__always)
func axpyLanes(_ w: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, chunks: Int) {
    for c in 0..<chunks { storeLanes(loadLanes(y + 8 * c) + w * loadLanes(x + 8 * c), y + 8 * c) }
}

func attentionForward(_ out: FloatPointer, probs: FloatPointer, qkv: UnsafePointer<Float>, batch: Int, length: Int,
                      d: Int, dHead: Int, threads: Int) {
    let heads = d / dHead, T = length, stride = 3 * d, chunks = dHead / 8
    let scale = 1 / Float(dHead).squareRoot()
    let parts = max(1, min(threads, batch * heads))
    parallelFor(parts, threads: threads) { part in
        for bh in chunkRange(batch * heads, parts: parts, part) {
            let b = bh / heads, h = bh % heads
            let base = qkv + b * T * stride + h * dHead
            let p = probs + bh * T * T
            for i in 0..<T {
                let q = base + i * stride
                let row = p + i * T
                var maxScore = -Float.infinity
                for j in 0...i {
                    let s = dotLanes(q, base + j * stride + d, chunks: chunks) * scale
                    row[j] = s
                    maxScore = max(maxScore, s)
                }
                var sum: Float = 0
                for j in 0...i {
                    let e = expf(row[j] - maxScore)
                    row[j] = e
                    sum += e
                }
                let inv = 1 / sum
                let o = out + (b * T + i) * d + h * dHead
                for c in 0..<chunks { storeLanes(Lanes(repeating: 0), o + 8 * c) }
                for j in 0...i {
                    row[j] *= inv
                    axpyLanes(row[j], base + j * stride + 2 * d, o, chunks: chunks)
                }
            }
        }
    }
}

/// dQKV (overwritten) from dOut, the saved probabilities and qkv. `scratch` holds threads * length floats.
func attentionBackward(dQKV: FloatPointer, dOut: UnsafePointer<Float>, probs: UnsafePointer<Float>, qkv: UnsafePointer<Float>,
                       batch: Int, length: Int, d: Int, dHead: Int, threads: Int, scratch: FloatPointer) {
    let heads = d / dHead, T = length, stride = 3 * d, chunks = dHead / 8
    let scale = 1 / Float(dHead).squareRoot()
    let parts = max(1, min(threads, batch * heads))
    parallelFor(parts, threads: threads) { part in
        let dp = scratch + part * T
        for bh in chunkRange(batch * heads, parts: parts, part) {
            let b = bh / heads, h = bh % heads
            let base = qkv + b * T * stride + h * dHead
            let dBase = dQKV + b * T * stride + h * dHead
            for i in 0..<T {
                for c in 0..<(3 * chunks) { storeLanes(Lanes(repeating: 0), dBase + i * stride + (c / chunks) * d + 8 * (c % chunks)) }
            }
            let p = probs + bh * T * T
            for i in 0..<T {
                let dy = dOut + (b * T + i) * d + h * dHead
                let row = p + i * T
                var dot: Float = 0
                for j in 0...i {
                    let s = dotLanes(dy, base + j * stride + 2 * d, chunks: chunks)
                    axpyLanes(row[j], dy, dBase + j * stride + 2 * d, chunks: chunks)
                    dp[j] = s
                    dot += row[j] * s
                }
                let q = base + i * stride, dq = dBase + i * stride
                for j in 0...i {
                    let ds = row[j] * (dp[j] - dot) * scale
                    axpyLanes(ds, base + j * stride + d, dq, chunks: chunks)
                    axpyLanes(ds, q, dBase + j * stride + d, chunks: chunks)
                }
            }
        }
    }
}

// MARK: - cross-entropy

/// Mean next-token cross-entropy over rows; writes dLogits = (softmax - onehot) / rows when given.
func crossEntropy(logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>, rows: Int, vocab: Int, dLogits: FloatPointer?) -> Float {
    var total: Double = 0
    let inv = 1 / Float(rows)
    for r in 0..<rows {
        let l = logits + r * vocab
        var maxv = -Float.infinity
        for i in 0..<vocab where l[i] > maxv { maxv = l[i] }
        var sum: Float = 0
        let t = Int(targets[r])
        if let dLogits {
            let g = dLogits + r * vocab
            for i in 0..<vocab {
                let e = expf(l[i] - maxv)
                g[i] = e
                sum += e
            }
            let scale = inv / sum
            for i in 0..<vocab { g[i] *= scale }
            g[t] -= inv
        } else {
            for i in 0..<vocab { sum += expf(l[i] - maxv) }
        }
        total += Double(maxv + logf(sum) - l[t])
    }
    return Float(total / Double(rows))
}
