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

func rmsnormForward(_ out: FloatPointer, rstd: FloatPointer, _ x: UnsafePointer<Float>, gain: UnsafePointer<Float>, rows: Int, d: Int,
                    threads: Int = 1) {
    let parts = max(1, min(threads, rows))
    parallelFor(parts, threads: threads) { part in
        for r in chunkRange(rows, parts: parts, part) {
            let xr = x + r * d, o = out + r * d
            var ss: Float = 0
            for i in 0..<d { ss += xr[i] * xr[i] }
            let s = 1 / (ss / Float(d) + rmsEps).squareRoot()
            rstd[r] = s
            for i in 0..<d { o[i] = xr[i] * s * gain[i] }
        }
    }
}

/// dX += dNorm backward; dGain += (optional). Each part sums its rows' dGain separately and the parts
/// are added in order, so the result depends only on the thread count.
func rmsnormBackward(dX: FloatPointer, dGain: FloatPointer?, dOut: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                     rstd: UnsafePointer<Float>, gain: UnsafePointer<Float>, rows: Int, d: Int, threads: Int = 1) {
    let parts = max(1, min(threads, rows))
    let partial = UnsafeMutablePointer<Float>.allocate(capacity: parts * d)
    defer { partial.deallocate() }
    partial.initialize(repeating: 0, count: parts * d)
    parallelFor(parts, threads: threads) { part in
        let pg = partial + part * d
        for r in chunkRange(rows, parts: parts, part) {
            let xr = x + r * d, g = dOut + r * d, dx = dX + r * d
            let s = rstd[r]
            var dot: Float = 0
            for i in 0..<d { dot += g[i] * gain[i] * xr[i] }
            let coef = dot * s * s * s / Float(d)
            for i in 0..<d { dx[i] += g[i] * gain[i] * s - xr[i] * coef }
            for i in 0..<d { pg[i] += g[i] * xr[i] * s }
        }
    }
    if let dGain {
        for part in 0..<parts {
            for i in 0..<d { dGain[i] += partial[part * d + i] }
        }
    }
}

// MARK: - linear (no bias): out[r, o] = sum_i in[r, i] w[o, i], w is (out, in) row-major

func linearForward(_ out: FloatPointer, _ input: UnsafePointer<Float>, weight: UnsafePointer<Float>, rows: Int, inFeatures: Int,
                   outFeatures: Int, threads: Int = 1) {
    let parts = max(1, min(threads, rows / 16))
    parallelFor(parts, threads: threads) { part in
        let r = chunkRange(rows, parts: parts, part)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(r.count), Int32(outFeatures), Int32(inFeatures),
                    1, input + r.lowerBound * inFeatures, Int32(inFeatures), weight, Int32(inFeatures), 0,
                    out + r.lowerBound * outFeatures, Int32(outFeatures))
    }
}

/// dInput = dOut @ W (overwritten); dWeight += dOut^T @ input when dWeight is given. Threads split
/// the rows of dInput and the rows (output features) of dWeight.
func linearBackward(dInput: FloatPointer?, dWeight: FloatPointer?, dOut: UnsafePointer<Float>, _ input: UnsafePointer<Float>,
                    weight: UnsafePointer<Float>, rows: Int, inFeatures: Int, outFeatures: Int, threads: Int = 1) {
    if let dInput {
        let parts = max(1, min(threads, rows / 16))
        parallelFor(parts, threads: threads) { part in
            let r = chunkRange(rows, parts: parts, part)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(r.count), Int32(inFeatures), Int32(outFeatures),
                        1, dOut + r.lowerBound * outFeatures, Int32(outFeatures), weight, Int32(inFeatures), 0,
                        dInput + r.lowerBound * inFeatures, Int32(inFeatures))
        }
    }
    if let dWeight {
        let parts = max(1, min(threads, outFeatures / 16))
        parallelFor(parts, threads: threads) { part in
            let o = chunkRange(outFeatures, parts: parts, part)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(o.count), Int32(inFeatures), Int32(rows),
                        1, dOut + o.lowerBound, Int32(outFeatures), input, Int32(inFeatures), 1,
                        dWeight + o.lowerBound * inFeatures, Int32(inFeatures))
        }
    }
}

// MARK: - GELU, tanh form

private let geluScale: Float = (2 / Float.pi).squareRoot()

/// gelu(x) = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3); keeps tanh(u) for the backward.
/// tanh(u) = 1 - 2 / (exp(2u) + 1): one expf instead of tanhf.
func geluForward(_ out: FloatPointer, tanhOut: FloatPointer, _ x: UnsafePointer<Float>, count: Int, threads: Int = 1) {
    let parts = max(1, min(threads, count / 4096))
    parallelFor(parts, threads: threads) { part in
        let range = chunkRange(count, parts: parts, part)
        @inline(__always) func gelu(_ v: Lanes) -> (out: Lanes, tanh: Lanes) {
            let u = geluScale * (v + 0.044715 * v * v * v)
            let th = 1 - 2 / (expLanes(2 * u) + 1)
            return (0.5 * v * (1 + th), th)
        }
        var i = range.lowerBound
        while i + 8 <= range.upperBound {
            let (o, th) = gelu(loadLanes(x + i))
            storeLanes(o, out + i)
            storeLanes(th, tanhOut + i)
            i += 8
        }
        while i < range.upperBound {
            let (o, th) = gelu(Lanes(repeating: x[i]))
            out[i] = o[0]
            tanhOut[i] = th[0]
            i += 1
        }
    }
}

/// dX = dOut * gelu'(x), in place on dOut, from the forward's tanh values.
func geluBackward(_ dOut: FloatPointer, _ x: UnsafePointer<Float>, tanh: UnsafePointer<Float>, count: Int, threads: Int = 1) {
    let parts = max(1, min(threads, count / 4096))
    parallelFor(parts, threads: threads) { part in
        for i in chunkRange(count, parts: parts, part) {
            let v = x[i], th = tanh[i]
            let grad = 0.5 * (1 + th) + 0.5 * v * (1 - th * th) * geluScale * (1 + 3 * 0.044715 * v * v)
            dOut[i] *= grad
        }
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
            for i in 0..<n { row[i] = Float(bitPattern: row[i].bitPattern & (0 &- UInt32(kr[i]))) }   // branch-free zeroing
        }
    }
}

/// dX = dOut * keep, in place (branch-free).
func absTopKBackward(_ dOut: FloatPointer, keep: UnsafePointer<UInt8>, count: Int, threads: Int = 1) {
    let parts = max(1, min(threads, count / 4096))
    parallelFor(parts, threads: threads) { part in
        for i in chunkRange(count, parts: parts, part) {
            dOut[i] = Float(bitPattern: dOut[i].bitPattern & (0 &- UInt32(keep[i])))
        }
    }
}

// MARK: - causal attention over qkv (rows x 3d: q, k, v), heads of dHead channels

/// Per (sequence, head), as small sgemm products: S = scale Q K^T, P = causal softmax(S) (kept in
/// `probs`, zero above the diagonal), Y = P V.
func attentionForward(_ out: FloatPointer, probs: FloatPointer, qkv: UnsafePointer<Float>, batch: Int, length: Int,
                      d: Int, dHead: Int, threads: Int) {
    let heads = d / dHead, T = length, stride = Int32(3 * d)
    let scale = 1 / Float(dHead).squareRoot()
    let parts = max(1, min(threads, batch * heads))
    parallelFor(parts, threads: threads) { part in
        for bh in chunkRange(batch * heads, parts: parts, part) {
            let b = bh / heads, h = bh % heads
            let q = qkv + b * T * 3 * d + h * dHead, k = q + d, v = q + 2 * d
            let p = probs + bh * T * T
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(T), Int32(dHead), scale, q, stride, k, stride,
                        0, p, Int32(T))
            for i in 0..<T {
                let row = p + i * T
                var maxScore = -Float.infinity
                for j in 0...i { maxScore = max(maxScore, row[j]) }
                let sum = expShifted(row, minus: maxScore, into: row, count: i + 1)
                let inv = 1 / sum
                for j in 0...i { row[j] *= inv }
                for j in (i + 1)..<T { row[j] = 0 }
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(T), Int32(dHead), Int32(T), 1, p, Int32(T), v, stride,
                        0, out + b * T * d + h * dHead, Int32(d))
        }
    }
}

/// dQKV (overwritten) from dOut, the saved probabilities and qkv. `scratch` holds threads * length^2 floats.
func attentionBackward(dQKV: FloatPointer, dOut: UnsafePointer<Float>, probs: UnsafePointer<Float>, qkv: UnsafePointer<Float>,
                       batch: Int, length: Int, d: Int, dHead: Int, threads: Int, scratch: FloatPointer) {
    let heads = d / dHead, T = length, stride = Int32(3 * d)
    let scale = 1 / Float(dHead).squareRoot()
    let parts = max(1, min(threads, batch * heads))
    parallelFor(parts, threads: threads) { part in
        let dp = scratch + part * T * T
        for bh in chunkRange(batch * heads, parts: parts, part) {
            let b = bh / heads, h = bh % heads
            let q = qkv + b * T * 3 * d + h * dHead, k = q + d, v = q + 2 * d
            let dq = dQKV + b * T * 3 * d + h * dHead, dk = dq + d, dv = dq + 2 * d
            let dy = dOut + b * T * d + h * dHead
            let p = probs + bh * T * T
            // dP = dY V^T, dV = P^T dY
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(T), Int32(dHead), 1, dy, Int32(d), v, stride,
                        0, dp, Int32(T))
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(T), Int32(dHead), Int32(T), 1, p, Int32(T), dy, Int32(d),
                        0, dv, stride)
            // dS = P (dP - rowsum(P dP)) scale, in place in dp (zero above the diagonal, where P is zero)
            for i in 0..<T {
                let pr = p + i * T, dr = dp + i * T
                var dot: Float = 0
                for j in 0...i { dot += pr[j] * dr[j] }
                for j in 0...i { dr[j] = pr[j] * (dr[j] - dot) * scale }
                for j in (i + 1)..<T { dr[j] = 0 }
            }
            // dQ = dS K, dK = dS^T Q
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(T), Int32(dHead), Int32(T), 1, dp, Int32(T), k, stride,
                        0, dq, stride)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(T), Int32(dHead), Int32(T), 1, dp, Int32(T), q, stride,
                        0, dk, stride)
        }
    }
}

// MARK: - cross-entropy

/// Mean next-token cross-entropy over rows; writes dLogits = (softmax - onehot) / rows when given.
/// Per-part float64 loss sums are added in order (deterministic for a thread count).
func crossEntropy(logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>, rows: Int, vocab: Int, dLogits: FloatPointer?,
                  threads: Int = 1) -> Float {
    let inv = 1 / Float(rows)
    let parts = max(1, min(threads, rows / 8))
    var totals = [Double](repeating: 0, count: parts)
    totals.withUnsafeMutableBufferPointer { totalsPointer in
        let tp = totalsPointer.baseAddress!
        parallelFor(parts, threads: threads) { part in
            var total: Double = 0
            for r in chunkRange(rows, parts: parts, part) {
                let l = logits + r * vocab
                var maxv = -Float.infinity
                for i in 0..<vocab { maxv = max(maxv, l[i]) }
                var sum: Float = 0
                let t = Int(targets[r])
                if let dLogits {
                    let g = dLogits + r * vocab
                    sum = expShifted(l, minus: maxv, into: g, count: vocab)
                    let scale = inv / sum
                    for i in 0..<vocab { g[i] *= scale }
                    g[t] -= inv
                } else {
                    for i in 0..<vocab { sum += expf(l[i] - maxv) }
                }
                total += Double(maxv + logf(sum) - l[t])
            }
            tp[part] = total
        }
    }
    return Float(totals.reduce(0, +) / Double(rows))
}
