import Foundation

/// What one optimizer step did.
public struct StepReport: Sendable {
    /// Index of the step (0-based) that ran.
    public var step: Int
    public var loss: Float
    /// RMS of the raw gradient over all parameters (float64 sum).
    public var gradRMS: Double
    public var lr: Double
    public var density: Double
    public var embedDensity: Double
}

/// Weight-sparse training, one `step` in SPEC 3's order (the reference's Trainer):
/// 1. backward: dense gradients of all parameters;
/// 2. g /= rms(g) + gradEps over all parameters together (float64 sum);
/// 3. Adam on every parameter with the global step count t = 1, 2, ... for bias correction;
/// 4. top-k projection of each matrix: the `minPerNeuron` largest |w| of every row of c_attn/c_fc and
///    every column of both c_proj are kept first and count toward ceil(d_now * numel); the rest is filled
///    by global |w| order, ties to the lower row-major index; dropped entries' moments are zeroed;
/// 5. decoupled weight decay w -= lr_t * weightDecay * w on the matrices.
/// The learning rate and densities follow `TrainingConfig.schedule(step:)`.
public final class Trainer {
    public let model: GPT
    public let config: TrainingConfig
    /// Optimizer steps done so far.
    public private(set) var step: Int
    /// Adam moments, in the model's parameter layout.
    public let adamM: FloatBuffer
    public let adamV: FloatBuffer
    /// Scratch of one thread's projections.
    final class ProjectionScratch {
        let scores: FloatBuffer
        let selection: SelectionScratch
        let keep: ByteBuffer
        let forced: ByteBuffer
        init(capacity: Int) {
            scores = FloatBuffer(count: capacity)
            selection = SelectionScratch(capacity: capacity)
            keep = ByteBuffer(count: capacity)
            forced = ByteBuffer(count: capacity)
        }
    }
    private let projectionScratch: [ProjectionScratch]

    /// A fresh trainer (step 0, zero moments). Checks the config's ranges but not SPEC 3's floor rule
    /// (`TrainingConfig.validate(for:)` does, for runs a user starts).
    public init(model: GPT, config: TrainingConfig) throws {
        try config.validateRanges()
        self.model = model
        self.config = config
        step = 0
        adamM = FloatBuffer(count: model.layout.count)
        adamV = FloatBuffer(count: model.layout.count)
        let largest = model.layout.tensors.map(\.count).max() ?? 1
        projectionScratch = (0..<model.threads).map { _ in ProjectionScratch(capacity: largest) }
    }

    /// A trainer resumed at `step` with the given moments.
    public convenience init(model: GPT, config: TrainingConfig, step: Int, adamM m: [Float], adamV v: [Float]) throws {
        try self.init(model: model, config: config)
        guard m.count == model.layout.count, v.count == model.layout.count else {
            throw SparseGPTError.badInput("Adam moments have \(m.count)/\(v.count) values for \(model.layout.count) parameters")
        }
        guard step >= 0 else { throw SparseGPTError.badInput("step \(step) must not be negative") }
        self.step = step
        adamM.copy(from: m)
        adamV.copy(from: v)
    }

    /// One optimizer step on a batch: `inputs` and `targets` are batch x length token ids (row-major).
    @discardableResult
    public func step(inputs: [Int32], targets: [Int32], batch: Int, length: Int) throws -> StepReport {
        try model.forward(tokens: inputs, batch: batch, length: length)
        let loss = try model.crossEntropy(targets: targets)
        model.backwardFromLoss(parameterGradients: true)
        let n = model.layout.count
        let g = model.gradients.pointer, w = model.parameters.pointer, m = adamM.pointer, v = adamV.pointer
        // fixed parts, each summed in float64 and added in order: the same for any thread count
        let threads = model.threads
        let optimizerStart = PhaseTimes.now()
        let parts = fixedChunks(n, minimumSize: 65536, maximum: 64)
        let squares = orderedParallelSum(n, parts: parts, threads: threads) { range in
            var sum: Double = 0
            for i in range { sum += Double(g[i]) * Double(g[i]) }
            return sum
        }
        let rms = (squares / Double(n)).squareRoot()
        let divisor = Float(rms + config.gradEps)

        let sched = config.schedule(step: step)
        step += 1
        let t = Double(step)
        let bc1 = Float(1 - Foundation.pow(config.beta1, t)), bc2 = Float(1 - Foundation.pow(config.beta2, t))
        let b1 = Float(config.beta1), b2 = Float(config.beta2)
        let a1 = Float(1 - config.beta1), a2 = Float(1 - config.beta2)
        let lr = Float(sched.lr), eps = Float(config.adamEps)
        parallelFor(parts, threads: threads) { part in
            for i in chunkRange(n, parts: parts, part) {
                let gi = g[i] / divisor
                g[i] = gi
                let mi = m[i] * b1 + a1 * gi
                let vi = v[i] * b2 + a2 * gi * gi
                m[i] = mi
                v[i] = vi
                w[i] -= lr * (mi / bc1) / ((vi / bc2).squareRoot() + eps)
            }
        }
        model.phaseTimes?.add(.optimizer, since: optimizerStart)
        // projection then decay, matrices split over threads (each matrix is independent of the others)
        let projectionStart = PhaseTimes.now()
        let decay = Float(sched.lr * config.weightDecay)
        let matrices = model.layout.tensors.filter(\.isMatrix)
        parallelForWorkers(matrices.count, threads: min(threads, projectionScratch.count)) { index, worker in
            let tensor = matrices[index]
            project(tensor, density: tensor.isEmbedding ? sched.embedDensity : sched.density, scratch: projectionScratch[worker])
            let p = w + tensor.offset
            for i in 0..<tensor.count { p[i] -= decay * p[i] }
        }
        model.phaseTimes?.add(.projection, since: projectionStart)
        return StepReport(step: step - 1, loss: loss, gradRMS: rms, lr: sched.lr, density: sched.density,
                          embedDensity: sched.embedDensity)
    }

    /// Keeps the ceil(density * numel) largest |w| of `tensor` (with the per-neuron floor for block
    /// matrices) and zeroes the rest and their moments.
    func project(_ tensor: ParameterTensor, density: Double, scratch: ProjectionScratch) {
        let count = tensor.count
        var k = keptCount(density, count)
        if k >= count { return }
        let w = model.parameters.pointer + tensor.offset
        let s = scratch.scores.pointer, keep = scratch.keep, forced = scratch.forced, selectScratch = scratch.selection
        for i in 0..<count { s[i] = abs(w[i]) }
        if !tensor.isEmbedding && config.minPerNeuron > 0 {
            let rows = tensor.shape[0], cols = tensor.shape[1]
            let f = forced.pointer
            if tensor.neuronsAreColumns {
                for c in 0..<cols {
                    selectTopK(s + c, stride: cols, rows, config.minPerNeuron, keep: f + c, keepStride: cols, scratch: selectScratch)
                }
            } else {
                for r in 0..<rows {
                    selectTopK(s + r * cols, cols, config.minPerNeuron, keep: f + r * cols, scratch: selectScratch)
                }
            }
            var forcedCount = 0
            for i in 0..<count where f[i] != 0 {
                s[i] = .infinity
                forcedCount += 1
            }
            k = max(k, forcedCount)
        }
        selectTopK(s, count, k, keep: keep.pointer, scratch: selectScratch)
        let m = adamM.pointer + tensor.offset, v = adamV.pointer + tensor.offset, kp = keep.pointer
        for i in 0..<count where kp[i] == 0 {
            w[i] = 0; m[i] = 0; v[i] = 0
        }
    }

    /// Mean next-token loss over held-out windows (count x (length + 1) tokens: inputs then the
    /// next token), evaluated in batches of at most `batch` windows.
    public func heldOutLoss(windows: [Int32], count: Int, length: Int, batch: Int = 64) throws -> Double {
        try SparseGPT.heldOutLoss(model: model, windows: windows, count: count, length: length, batch: batch)
    }
}

/// Mean next-token loss of `model` over `count` windows of length + 1 tokens (row-major).
public func heldOutLoss(model: GPT, windows: [Int32], count: Int, length: Int, batch: Int = 64) throws -> Double {
    guard count >= 1, windows.count == count * (length + 1) else {
        throw SparseGPTError.badInput("\(windows.count) tokens for \(count) windows of \(length + 1)")
    }
    var total: Double = 0
    var start = 0
    while start < count {
        let n = min(batch, count - start)
        var x = [Int32](), y = [Int32]()
        x.reserveCapacity(n * length); y.reserveCapacity(n * length)
        for r in start..<(start + n) {
            let base = r * (length + 1)
            x += windows[base..<(base + length)]
            y += windows[(base + 1)...(base + length)]
        }
        try model.forward(tokens: x, batch: n, length: length)
        total += Double(try model.crossEntropy(targets: y)) * Double(n)
        start += n
    }
    return total / Double(count)
}
