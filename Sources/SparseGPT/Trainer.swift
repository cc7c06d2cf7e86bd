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

/// Weight-sparse training, one `step` in the method's order (the reference's Trainer):
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
        let selection: SelectionScratch
        let keep: ByteBuffer
        let forced: ByteBuffer
        init(capacity: Int) {
            selection = SelectionScratch(capacity: capacity)
            keep = ByteBuffer(count: capacity)
            forced = ByteBuffer(count: capacity)
        }
    }
    /// One per thread; grows when the model's thread count does (`GPT.setThreads` between steps).
    private var projectionScratch: [ProjectionScratch]
    /// The selection keys of |w| after Adam (`magnitudeKey`), written by the Adam pass for the projection.
    private let magnitudeKeys: UnsafeMutablePointer<UInt32>
    /// The matrices, largest first (the projection hands them out to threads in this order).
    private let matrices: [ParameterTensor]

    /// A fresh trainer (step 0, zero moments). Checks the config's ranges but not the method's floor rule
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
        magnitudeKeys = .allocate(capacity: max(model.layout.count, 1))
        matrices = model.layout.tensors.filter(\.isMatrix).sorted { $0.count > $1.count }
    }

    deinit { magnitudeKeys.deallocate() }

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
        let keys = magnitudeKeys
        // Adam on 8 lanes at a time (the same IEEE operations as one at a time), also writing the
        // projection's selection keys so that it need not read the weights again
        parallelFor(parts, threads: threads) { part in
            let range = chunkRange(n, parts: parts, part)
            @inline(__always) func update(_ g: Lanes, _ m: Lanes, _ v: Lanes, _ w: Lanes) -> (g: Lanes, m: Lanes, v: Lanes, w: Lanes) {
                let gi = g / divisor
                let mi = m * b1 + a1 * gi
                let vi = v * b2 + a2 * gi * gi
                return (gi, mi, vi, w - lr * (mi / bc1) / ((vi / bc2).squareRoot() + eps))
            }
            var i = range.lowerBound
            while i + 8 <= range.upperBound {
                let u = update(loadLanes(g + i), loadLanes(m + i), loadLanes(v + i), loadLanes(w + i))
                storeLanes(u.g, g + i); storeLanes(u.m, m + i); storeLanes(u.v, v + i); storeLanes(u.w, w + i)
                UnsafeMutableRawPointer(keys + i).storeBytes(of: unsafeBitCast(u.w, to: SIMD8<UInt32>.self) & 0x7fff_ffff,
                                                             as: SIMD8<UInt32>.self)
                i += 8
            }
            while i < range.upperBound {
                let u = update(Lanes(repeating: g[i]), Lanes(repeating: m[i]), Lanes(repeating: v[i]), Lanes(repeating: w[i]))
                g[i] = u.g[0]; m[i] = u.m[0]; v[i] = u.v[0]; w[i] = u.w[0]
                keys[i] = magnitudeKey(u.w[0])
                i += 1
            }
        }
        model.phaseTimes?.add(.optimizer, since: optimizerStart)
        // projection and decay in one pass per matrix; matrices go to threads (each is independent of the others)
        let projectionStart = PhaseTimes.now()
        let decay = Float(sched.lr * config.weightDecay)
        if projectionScratch.count < threads {
            let largest = matrices.first?.count ?? 1
            projectionScratch += (projectionScratch.count..<threads).map { _ in ProjectionScratch(capacity: largest) }
        }
        parallelForWorkers(matrices.count, threads: min(threads, projectionScratch.count)) { index, worker in
            let tensor = matrices[index]
            projectAndDecay(tensor, density: tensor.isEmbedding ? sched.embedDensity : sched.density, decay: decay,
                            scratch: projectionScratch[worker])
        }
        model.phaseTimes?.add(.projection, since: projectionStart)
        return StepReport(step: step - 1, loss: loss, gradRMS: rms, lr: sched.lr, density: sched.density,
                          embedDensity: sched.embedDensity)
    }

    /// The projection of `projectAndDecay` outside an optimizer step: the keys come from the weights
    /// as they are, and nothing decays.
    func project(_ tensor: ParameterTensor, density: Double, scratch: ProjectionScratch) {
        let w = model.parameters.pointer + tensor.offset, keys = magnitudeKeys + tensor.offset
        for i in 0..<tensor.count { keys[i] = magnitudeKey(w[i]) }
        projectAndDecay(tensor, density: density, decay: nil, scratch: scratch)
    }

    /// Keeps the ceil(density * numel) largest |w| of `tensor` (with the per-neuron floor for block
    /// matrices), zeroes the rest and their moments, and decays the kept weights (w -= decay * w) when
    /// `decay` is given. Selects on `magnitudeKeys` (the keys of |w| the Adam pass wrote; forced entries
    /// get the key of +infinity).
    func projectAndDecay(_ tensor: ParameterTensor, density: Double, decay: Float?, scratch: ProjectionScratch) {
        let count = tensor.count
        var k = keptCount(density, count)
        let w = model.parameters.pointer + tensor.offset
        if k >= count {
            if let decay { for i in 0..<count { w[i] -= decay * w[i] } }
            return
        }
        let keys = magnitudeKeys + tensor.offset
        let keep = scratch.keep.pointer, selection = scratch.selection
        if !tensor.isEmbedding && config.minPerNeuron > 0 {
            let rows = tensor.shape[0], cols = tensor.shape[1]
            let f = scratch.forced.pointer
            if tensor.neuronsAreColumns {
                let column = selection.keys
                for c in 0..<cols {
                    for r in 0..<rows { column[r] = keys[r * cols + c] }
                    selectTopKeys(column, rows, config.minPerNeuron, keep: f + c, keepStride: cols, histogram: selection.histogram,
                                  buffer: selection.buffer)
                }
            } else {
                for r in 0..<rows {
                    selectTopKeys(keys + r * cols, cols, config.minPerNeuron, keep: f + r * cols, histogram: selection.histogram,
                                  buffer: selection.buffer)
                }
            }
            let infinityKey = magnitudeKey(.infinity)
            var forcedCount = 0
            for i in 0..<count {
                let isForced = UInt32(f[i])
                keys[i] = (keys[i] & (isForced &- 1)) | (infinityKey & (0 &- isForced))
                forcedCount &+= Int(isForced)
            }
            k = max(k, forcedCount)
        }
        selectTopKeys(keys, count, k, keep: keep, histogram: selection.histogram, buffer: selection.buffer)
        let m = adamM.pointer + tensor.offset, v = adamV.pointer + tensor.offset
        let decays = decay != nil, rate = decay ?? 0
        for i in 0..<count {            // branch-free: kept entries decay, dropped ones and their moments become +0
            let mask = 0 &- UInt32(keep[i])
            let kept = decays ? w[i] - rate * w[i] : w[i]
            w[i] = Float(bitPattern: kept.bitPattern & mask)
            m[i] = Float(bitPattern: m[i].bitPattern & mask)
            v[i] = Float(bitPattern: v[i].bitPattern & mask)
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
