import COpenBLAS
import Foundation

/// Forward/backward pairs of the model's layers over flat row-major Float buffers (llm.c style).
/// `rows` is batch * length. Backward functions accumulate (+=) into input gradients unless noted.

typealias FloatPointer = UnsafeMutablePointer<Float>

/// Runs body(chunk, worker) for every chunk in 0..<chunks on min(threads, chunks) threads: worker w
/// takes chunks w, w + workers, ... and may use scratch of its own. Callers choose the chunks from
/// the problem's size alone (`fixedChunks`), never from the thread count, and each chunk writes only
/// its own outputs, so results are bitwise the same for any thread count.
@inline(__always)
func parallelForWorkers(_ chunks: Int, threads: Int, _ body: (_ chunk: Int, _ worker: Int) -> Void) {
    let workers = min(max(threads, 1), chunks)
    if workers <= 1 {
        for c in 0..<chunks { body(c, 0) }
        return
    }
    DispatchQueue.concurrentPerform(iterations: workers) { worker in
        var c = worker
        while c < chunks {
            body(c, worker)
            c += workers
        }
    }
}

/// `parallelForWorkers` for chunks that need no scratch.
@inline(__always)
func parallelFor(_ chunks: Int, threads: Int, _ body: (Int) -> Void) {
    parallelForWorkers(chunks, threads: threads) { chunk, _ in body(chunk) }
}

/// How many chunks to split n units of work into: as many as fit `minimumSize` units each, at most
/// `maximum`. Depends on the size only, so results do not depend on the thread count.
@inline(__always)
func fixedChunks(_ n: Int, minimumSize: Int, maximum: Int = 32) -> Int {
    max(1, min(maximum, n / max(minimumSize, 1)))
}

/// The sum of `partSum` over `parts` contiguous ranges of 0..<n, computed in parallel and added in
/// range order: deterministic for a given number of parts.
func orderedParallelSum(_ n: Int, parts: Int, threads: Int, _ partSum: (Range<Int>) -> Double) -> Double {
    var sums = [Double](repeating: 0, count: parts)
    sums.withUnsafeMutableBufferPointer { buffer in
        let sp = buffer.baseAddress!
        parallelFor(parts, threads: threads) { part in sp[part] = partSum(chunkRange(n, parts: parts, part)) }
    }
    return sums.reduce(0, +)
}

/// Splits 0..<n into `parts` contiguous ranges.
@inline(__always)
func chunkRange(_ n: Int, parts: Int, _ i: Int) -> Range<Int> {
    let lo = n * i / parts, hi = n * (i + 1) / parts
    return lo..<hi
}

// MARK: - embedding

func embeddingForward(_ out: FloatPointer, tokens: UnsafePointer<Int32>, wte: UnsafePointer<Float>, wpe: UnsafePointer<Float>,
                      layout: SequenceLayout, d: Int) {
    for b in 0..<layout.count {
        let start = layout.starts[b]
        for t in 0..<layout.lengths[b] {
            let o = out + (start + t) * d
            let e = wte + Int(tokens[start + t]) * d, p = wpe + t * d
            for i in 0..<d { o[i] = e[i] + p[i] }
        }
    }
}

func embeddingBackward(dWte: FloatPointer, dWpe: FloatPointer, dOut: UnsafePointer<Float>, tokens: UnsafePointer<Int32>,
                       layout: SequenceLayout, d: Int) {
    for b in 0..<layout.count {
        let start = layout.starts[b]
        for t in 0..<layout.lengths[b] {
            let g = dOut + (start + t) * d
            let e = dWte + Int(tokens[start + t]) * d, p = dWpe + t * d
            for i in 0..<d { e[i] += g[i]; p[i] += g[i] }
        }
    }
}

// MARK: - RMSNorm: y = x * rsqrt(mean(x^2) + eps) * g

let rmsEps: Float = 1e-5

func rmsnormForward(_ out: FloatPointer, rstd: FloatPointer, _ x: UnsafePointer<Float>, gain: UnsafePointer<Float>, rows: Int, d: Int,
                    threads: Int = 1) {
    let parts = fixedChunks(rows, minimumSize: 16)
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
/// are added in order.
func rmsnormBackward(dX: FloatPointer, dGain: FloatPointer?, dOut: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                     rstd: UnsafePointer<Float>, gain: UnsafePointer<Float>, rows: Int, d: Int, threads: Int = 1) {
    let parts = fixedChunks(rows, minimumSize: 16)
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
    let parts = fixedChunks(rows, minimumSize: 128, maximum: 16)
    parallelFor(parts, threads: threads) { part in
        let r = chunkRange(rows, parts: parts, part)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(r.count), Int32(outFeatures), Int32(inFeatures),
                    1, input + r.lowerBound * inFeatures, Int32(inFeatures), weight, Int32(inFeatures), 0,
                    out + r.lowerBound * outFeatures, Int32(outFeatures))
    }
}

/// dInput = dOut @ W (overwritten); dWeight += dOut^T @ input when dWeight is given. Chunks split
/// the rows of dInput and the rows (output features) of dWeight.
func linearBackward(dInput: FloatPointer?, dWeight: FloatPointer?, dOut: UnsafePointer<Float>, _ input: UnsafePointer<Float>,
                    weight: UnsafePointer<Float>, rows: Int, inFeatures: Int, outFeatures: Int, threads: Int = 1) {
    if let dInput {
        let parts = fixedChunks(rows, minimumSize: 128, maximum: 16)
        parallelFor(parts, threads: threads) { part in
            let r = chunkRange(rows, parts: parts, part)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(r.count), Int32(inFeatures), Int32(outFeatures),
                        1, dOut + r.lowerBound * outFeatures, Int32(outFeatures), weight, Int32(inFeatures), 0,
                        dInput + r.lowerBound * inFeatures, Int32(inFeatures))
        }
    }
    if let dWeight {
        let parts = fixedChunks(outFeatures, minimumSize: 64, maximum: 8)
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
    let parts = fixedChunks(count, minimumSize: 4096)
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
    let parts = fixedChunks(count, minimumSize: 4096)
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
/// Rows r and r + `interleave` come from the same site (e.g. interleave 3 for the q, k, v segments of
/// a qkv row): each row's selection starts from the threshold of the last row of its kind.
func absTopKForward(_ x: FloatPointer, keep: UnsafeMutablePointer<UInt8>, rows: Int, n: Int, k: Int,
                    scratch: [SelectionScratch], threads: Int, interleave: Int = 1) {
    let parts = fixedChunks(rows, minimumSize: 8)
    parallelForWorkers(parts, threads: min(threads, scratch.count)) { part, worker in
        let s = scratch[worker]
        var hints = (UInt32(0x3f00_0000), UInt32(0x3f00_0000), UInt32(0x3f00_0000), UInt32(0x3f00_0000))
        for r in chunkRange(rows, parts: parts, part) {
            let row = x + r * n, kr = keep + r * n
            for i in 0..<n { s.keys[i] = magnitudeKey(row[i]) }
            switch interleave <= 4 ? r % interleave : 0 {
            case 1: selectTopKeysNear(s.keys, n, k, keep: kr, hint: &hints.1)
            case 2: selectTopKeysNear(s.keys, n, k, keep: kr, hint: &hints.2)
            case 3: selectTopKeysNear(s.keys, n, k, keep: kr, hint: &hints.3)
            default: selectTopKeysNear(s.keys, n, k, keep: kr, hint: &hints.0)
            }
            for i in 0..<n { row[i] = Float(bitPattern: row[i].bitPattern & (0 &- UInt32(kr[i]))) }   // branch-free zeroing
        }
    }
}

/// dX = dOut * keep, in place (branch-free).
func absTopKBackward(_ dOut: FloatPointer, keep: UnsafePointer<UInt8>, count: Int, threads: Int = 1) {
    let parts = fixedChunks(count, minimumSize: 4096)
    parallelFor(parts, threads: threads) { part in
        for i in chunkRange(count, parts: parts, part) {
            dOut[i] = Float(bitPattern: dOut[i].bitPattern & (0 &- UInt32(keep[i])))
        }
    }
}

// MARK: - where each sequence's rows are

/// Sequences laid out one after another: sequence s occupies rows starts[s] ..< starts[s] + lengths[s]
/// (its positions 0..<lengths[s]); its attention probabilities (heads x length^2) start at probStarts[s].
/// A batch x length block is the case of equal lengths; prompts of different lengths pack without padding.
struct SequenceLayout {
    let starts: [Int]
    let lengths: [Int]
    let probStarts: [Int]
    /// Total rows and probabilities.
    let rows: Int
    let probCount: Int

    init(lengths: [Int], heads: Int) {
        var starts: [Int] = [], probStarts: [Int] = []
        starts.reserveCapacity(lengths.count); probStarts.reserveCapacity(lengths.count)
        var row = 0, prob = 0
        for n in lengths {
            starts.append(row); probStarts.append(prob)
            row += n; prob += heads * n * n
        }
        self.starts = starts
        self.lengths = lengths
        self.probStarts = probStarts
        rows = row
        probCount = prob
    }

    init(batch: Int, length: Int, heads: Int) {
        self.init(lengths: [Int](repeating: length, count: batch), heads: heads)
    }

    var count: Int { lengths.count }
}

// MARK: - causal attention over qkv (rows x 3d: q, k, v), heads of dHead channels

/// Per (sequence, head), as small sgemm products: S = scale Q K^T, P = causal softmax(S) (kept in
/// `probs`, zero above the diagonal), Y = P V.
func attentionForward(_ out: FloatPointer, probs: FloatPointer, qkv: UnsafePointer<Float>, layout: SequenceLayout,
                      d: Int, dHead: Int, threads: Int) {
    let heads = d / dHead, stride = Int32(3 * d)
    let scale = 1 / Float(dHead).squareRoot()
    let parts = fixedChunks(layout.count * heads, minimumSize: 1)
    parallelFor(parts, threads: threads) { part in
        for bh in chunkRange(layout.count * heads, parts: parts, part) {
            let b = bh / heads, h = bh % heads
            let T = layout.lengths[b], start = layout.starts[b]
            let q = qkv + start * 3 * d + h * dHead, k = q + d, v = q + 2 * d
            let p = probs + layout.probStarts[b] + h * T * T
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
                        0, out + start * d + h * dHead, Int32(d))
        }
    }
}

func attentionForward(_ out: FloatPointer, probs: FloatPointer, qkv: UnsafePointer<Float>, batch: Int, length: Int,
                      d: Int, dHead: Int, threads: Int) {
    attentionForward(out, probs: probs, qkv: qkv, layout: SequenceLayout(batch: batch, length: length, heads: d / dHead),
                     d: d, dHead: dHead, threads: threads)
}

/// dQKV (overwritten) from dOut, the saved probabilities and qkv. `scratch` holds threads * (longest length)^2 floats.
func attentionBackward(dQKV: FloatPointer, dOut: UnsafePointer<Float>, probs: UnsafePointer<Float>, qkv: UnsafePointer<Float>,
                       layout: SequenceLayout, d: Int, dHead: Int, threads: Int, scratch: FloatPointer) {
    let heads = d / dHead, stride = Int32(3 * d)
    let longest = layout.lengths.max() ?? 0
    let scale = 1 / Float(dHead).squareRoot()
    let parts = fixedChunks(layout.count * heads, minimumSize: 1)
    parallelForWorkers(parts, threads: threads) { part, worker in
        let dp = scratch + worker * longest * longest
        for bh in chunkRange(layout.count * heads, parts: parts, part) {
            let b = bh / heads, h = bh % heads
            let T = layout.lengths[b], start = layout.starts[b]
            let q = qkv + start * 3 * d + h * dHead, k = q + d, v = q + 2 * d
            let dq = dQKV + start * 3 * d + h * dHead, dk = dq + d, dv = dq + 2 * d
            let dy = dOut + start * d + h * dHead
            let p = probs + layout.probStarts[b] + h * T * T
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

func attentionBackward(dQKV: FloatPointer, dOut: UnsafePointer<Float>, probs: UnsafePointer<Float>, qkv: UnsafePointer<Float>,
                       batch: Int, length: Int, d: Int, dHead: Int, threads: Int, scratch: FloatPointer) {
    attentionBackward(dQKV: dQKV, dOut: dOut, probs: probs, qkv: qkv, layout: SequenceLayout(batch: batch, length: length, heads: d / dHead),
                      d: d, dHead: dHead, threads: threads, scratch: scratch)
}

// MARK: - attention of each sequence's last position only

/// For each sequence s: its last position's query (row s of `q`, S x d) attends over the sequence's
/// keys and values (`kv`, rows x 2d: k then v, laid out by `layout`); out is S x d. The probabilities
/// of (s, head h) are kept at probs[heads * starts[s] + h * lengths[s] ..< ... + lengths[s]].
func lastQueryAttentionForward(_ out: FloatPointer, probs: FloatPointer, q: UnsafePointer<Float>, kv: UnsafePointer<Float>,
                               layout: SequenceLayout, d: Int, dHead: Int, threads: Int) {
    let heads = d / dHead
    let scale = 1 / Float(dHead).squareRoot()
    let parts = fixedChunks(layout.count * heads, minimumSize: 64)
    parallelFor(parts, threads: threads) { part in
        for sh in chunkRange(layout.count * heads, parts: parts, part) {
            let s = sh / heads, h = sh % heads
            let T = layout.lengths[s], start = layout.starts[s]
            let qs = q + s * d + h * dHead
            let k = kv + start * 2 * d + h * dHead, v = k + d
            let p = probs + heads * start + h * T
            var maxScore = -Float.infinity
            for j in 0..<T {
                let kj = k + j * 2 * d
                var dot: Float = 0
                for c in 0..<dHead { dot += qs[c] * kj[c] }
                p[j] = scale * dot
                maxScore = max(maxScore, p[j])
            }
            let sum = expShifted(p, minus: maxScore, into: p, count: T)
            let inv = 1 / sum
            for j in 0..<T { p[j] *= inv }
            let o = out + s * d + h * dHead
            for c in 0..<dHead { o[c] = 0 }
            for j in 0..<T {
                let pj = p[j], vj = v + j * 2 * d
                for c in 0..<dHead { o[c] += pj * vj[c] }
            }
        }
    }
}

/// Backward of `lastQueryAttentionForward`: dQ (S x d) and dKV (rows x 2d), both overwritten, from
/// dOut (S x d). `scratch` holds threads * (longest length) floats.
func lastQueryAttentionBackward(dQ: FloatPointer, dKV: FloatPointer, dOut: UnsafePointer<Float>, probs: UnsafePointer<Float>,
                                q: UnsafePointer<Float>, kv: UnsafePointer<Float>, layout: SequenceLayout, d: Int, dHead: Int,
                                threads: Int, scratch: FloatPointer) {
    let heads = d / dHead
    let longest = layout.lengths.max() ?? 0
    let scale = 1 / Float(dHead).squareRoot()
    let parts = fixedChunks(layout.count * heads, minimumSize: 64)
    parallelForWorkers(parts, threads: threads) { part, worker in
        let dp = scratch + worker * longest
        for sh in chunkRange(layout.count * heads, parts: parts, part) {
            let s = sh / heads, h = sh % heads
            let T = layout.lengths[s], start = layout.starts[s]
            let qs = q + s * d + h * dHead, dy = dOut + s * d + h * dHead, dq = dQ + s * d + h * dHead
            let k = kv + start * 2 * d + h * dHead, v = k + d
            let dk = dKV + start * 2 * d + h * dHead, dv = dk + d
            let p = probs + heads * start + h * T
            // dP_j = dy . v_j, dV_j = P_j dy
            var dot: Float = 0
            for j in 0..<T {
                let vj = v + j * 2 * d, dvj = dv + j * 2 * d, pj = p[j]
                var e: Float = 0
                for c in 0..<dHead { e += dy[c] * vj[c]; dvj[c] = pj * dy[c] }
                dp[j] = e
                dot += pj * e
            }
            // dS_j = P_j (dP_j - sum P dP) scale; dQ = sum_j dS_j k_j, dK_j = dS_j q
            for c in 0..<dHead { dq[c] = 0 }
            for j in 0..<T {
                let ds = p[j] * (dp[j] - dot) * scale
                let kj = k + j * 2 * d, dkj = dk + j * 2 * d
                for c in 0..<dHead { dq[c] += ds * kj[c]; dkj[c] = ds * qs[c] }
            }
        }
    }
}

// MARK: - cross-entropy

/// Mean next-token cross-entropy over rows; writes dLogits = (softmax - onehot) / rows when given.
/// Per-part float64 loss sums are added in order.
func crossEntropy(logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>, rows: Int, vocab: Int, dLogits: FloatPointer?,
                  threads: Int = 1) -> Float {
    let inv = 1 / Float(rows)
    let total = orderedParallelSum(rows, parts: fixedChunks(rows, minimumSize: 8), threads: threads) { range in
        var total: Double = 0
        for r in range {
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
        return total
    }
    return Float(total / Double(rows))
}
