import COpenBLAS
import Foundation

/// One node location's activations: `value` after AbsTopK (before ablation), the keep mask, and
/// the ablated value (allocated on first use).
final class Site {
    let value: FloatBuffer
    let keep: ByteBuffer
    var ablated: FloatBuffer?
    init(count: Int) {
        value = FloatBuffer(count: count)
        keep = ByteBuffer(count: count)
    }
}

/// Activations of a block's MLP half over some rows: norm, its three node sites, GELU.
final class MLPActivations {
    let rstd2, fcPre, geluTanh: FloatBuffer
    let mlpIn, mlpNeuron, mlpOut: Site

    init(rows: Int, d: Int) {
        rstd2 = FloatBuffer(count: rows); fcPre = FloatBuffer(count: rows * 4 * d); geluTanh = FloatBuffer(count: rows * 4 * d)
        mlpIn = Site(count: rows * d); mlpNeuron = Site(count: rows * 4 * d); mlpOut = Site(count: rows * d)
    }
}

/// Activations of one transformer block for a (batch, length) shape.
final class BlockActivations {
    let rstd1: FloatBuffer
    let attnIn, qkv, attnOut: Site
    let attnY, probs, residMid: FloatBuffer
    let mlp: MLPActivations

    init(rows: Int, probsCount: Int, d: Int) {
        rstd1 = FloatBuffer(count: rows)
        attnIn = Site(count: rows * d); qkv = Site(count: rows * 3 * d); attnOut = Site(count: rows * d)
        attnY = FloatBuffer(count: rows * d); probs = FloatBuffer(count: probsCount)
        residMid = FloatBuffer(count: rows * d)
        mlp = MLPActivations(rows: rows, d: d)
    }
}

/// The weight-sparse GPT of the method with its forward and backward passes over flat buffers.
///
/// Usage: `forward(tokens:batch:length:ablation:)` fills `logits` (batch x length x vocab);
/// `crossEntropy(targets:)` gives the mean next-token loss and its dLogits;
/// `backward(dLogits:parameterGradients:)` fills `gradients` (when asked: pruning skips them) and,
/// when the forward had an ablation, `nodeMaskGradient` (d loss / d mask per node, summed over rows).
/// For the task loss of pruning, `answerTaskLoss(tokens:lengths:candidates:ablation:maskGradient:)`
/// gives the same loss and node mask gradient as forward + `taskLoss` + backward while computing only
/// what the loss at each prompt's last position depends on.
/// Results are deterministic, and bitwise the same for any thread count.
public final class GPT {
    public let config: ModelConfig
    public let layout: ParameterLayout
    public let nodes: NodeLayout
    /// All parameters, flat, in `layout` order (PyTorch layout per tensor).
    public let parameters: FloatBuffer
    /// Gradients of the last backward with `parameterGradients: true`, in `layout` order.
    public let gradients: FloatBuffer
    /// Threads for the model's loops and products.
    public private(set) var threads: Int

    public internal(set) var batch = 0
    public internal(set) var length = 0
    var capacityRows = 0
    var capacityProbs = 0
    var tokens: [Int32] = []
    /// Where the sequences of the last forward are (batch x length, or packed prompts).
    var sequences = SequenceLayout(lengths: [], heads: 1)
    var blocks: [BlockActivations] = []
    var residuals: [FloatBuffer] = []
    var finalAblated: FloatBuffer?
    var rstdF = FloatBuffer(count: 0)
    var lnfOut = FloatBuffer(count: 0)
    /// Logits of the last forward, batch x length x vocab.
    public private(set) var logits = FloatBuffer(count: 0)
    /// dLogits of the last `crossEntropy`.
    public private(set) var dLogits = FloatBuffer(count: 0)
    var dResid = FloatBuffer(count: 0), dA = FloatBuffer(count: 0), dY = FloatBuffer(count: 0)
    var dWide = FloatBuffer(count: 0), dQKV = FloatBuffer(count: 0)
    var scratch = FloatBuffer(count: 0)
    var selection: [SelectionScratch] = []
    var ablation: NodeAblation?
    var nodeGradientSums: [Double] = []
    /// Whether products with sparse weights and sparse activations skip zeros (otherwise all run
    /// as dense sgemm); results agree to float rounding.
    public var useSparseKernels = true
    /// Whether products of ablated sites take the mask-0 columns out and add their means' product
    /// once (`ablatedSparseProduct`, `ablatedDenseProduct`); results agree to float rounding.
    var separatesPrunedColumns = true
    /// Per layer: compressed c_attn, attn.c_proj, c_fc, mlp.c_proj for the current forward, where sparse enough.
    private(set) var sparseWeights: [[SparseMatrix?]] = []
    var sparseStore: [[SparseMatrix]] = []
    /// The last layer's c_attn as its q rows (d x d) and its k, v rows (2d x d), where sparse enough.
    var sparseSplit: [SparseMatrix?] = [nil, nil]
    var sparseSplitStore: [SparseMatrix] = []
    /// Copies of the dense block matrices the compressed ones were built from.
    var sparseSource: FloatBuffer?
    /// Promises that `parameters` no longer change (a model being pruned), so the compressed
    /// matrices, once built, are used without comparing the weights again: that comparison reads
    /// every block matrix on each forward, some 6% of a wide model's pruning time.
    public var weightsAreFrozen = false
    var sparseBuiltWithSparseKernels = false
    /// Activations of the last block at the prompts' last positions (task path).
    var answer: AnswerActivations?
    var activeInputs = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    /// An ablated site's kept columns, gathered, then its pruned columns' means and their product.
    var ablationScratch = FloatBuffer(count: 0)
    /// Each thread's tile of transposed inputs (`tiledSparseProduct`).
    var tileScratch = FloatBuffer(count: 0)
    /// A dense block matrix's columns of the kept nodes, gathered (`ablatedDenseProduct`).
    var gatheredWeights = FloatBuffer(count: 0)
    /// A product runs sparse when (weight density) x (activation density) is at most this.
    static let sparseProductCutoff = 1.0 / 32
    /// d loss / d mask of the last backward after an ablated forward (global node order).
    public internal(set) var nodeMaskGradient: [Float] = []
    /// When attached, forward, backward and `Trainer.step` add their phases' wall and CPU time to it.
    public var phaseTimes: PhaseTimes?

    /// A model with the method's initialisation drawn from `seed`.
    public convenience init(config: ModelConfig, seed: UInt64, threads: Int = 1) throws {
        try self.init(config: config, parameters: initialParameters(config, seed: seed), threads: threads)
    }

    /// A model with the given flat parameters (in `ParameterLayout(config)` order).
    public init(config: ModelConfig, parameters values: [Float], threads: Int = 1) throws {
        try config.validate()
        self.config = config
        layout = ParameterLayout(config)
        nodes = NodeLayout(config)
        guard values.count == layout.count else {
            throw SparseGPTError.badInput("\(values.count) parameter values for a model of \(layout.count)")
        }
        parameters = FloatBuffer(values)
        gradients = FloatBuffer(count: layout.count)
        self.threads = max(1, threads)
        setThreads(self.threads)
    }

    deinit { activeInputs.deallocate() }

    /// Sets the thread count of the model's loops. OpenBLAS itself runs single-threaded (a process-wide
    /// setting): the model splits each product across its own threads, so no BLAS threads spin between products.
    /// The activations are dropped (per-thread scratch is sized at the next forward): call it between steps.
    public func setThreads(_ n: Int) {
        threads = max(1, n)
        openblas_set_num_threads(1)
        capacityRows = 0
        capacityProbs = 0
        batch = 0
        length = 0
    }

    /// The values of parameter `name` (a copy).
    public func tensor(_ name: String) -> [Float]? {
        guard let t = layout.tensor(named: name) else { return nil }
        return Array(UnsafeBufferPointer(start: parameters.pointer + t.offset, count: t.count))
    }

    /// Overwrites parameter `name` with `values` (its element count must match).
    public func setTensor(_ name: String, _ values: [Float]) throws {
        guard let t = layout.tensor(named: name) else { throw SparseGPTError.badInput("no parameter named \(name)") }
        guard values.count == t.count else {
            throw SparseGPTError.badInput("parameter \(name) has \(t.count) values, got \(values.count)")
        }
        values.withUnsafeBufferPointer { (parameters.pointer + t.offset).update(from: $0.baseAddress!, count: t.count) }
    }

    /// The gradient of parameter `name` from the last backward (a copy).
    public func gradient(_ name: String) -> [Float]? {
        guard let t = layout.tensor(named: name) else { return nil }
        return Array(UnsafeBufferPointer(start: gradients.pointer + t.offset, count: t.count))
    }

    func reserve(batch: Int, length: Int) {
        reserve(rows: batch * length, probs: batch * config.nHead * length * length)
    }

    func reserve(rows: Int, probs probsCount: Int) {
        if rows <= capacityRows && probsCount <= capacityProbs { return }
        capacityRows = max(rows, capacityRows)
        capacityProbs = max(probsCount, capacityProbs)
        let d = config.dModel, n = capacityRows
        blocks = (0..<config.nLayer).map { _ in BlockActivations(rows: n, probsCount: capacityProbs, d: d) }
        residuals = (0...config.nLayer).map { _ in FloatBuffer(count: n * d) }
        finalAblated = nil
        rstdF = FloatBuffer(count: n); lnfOut = FloatBuffer(count: n * d)
        logits = FloatBuffer(count: 0); dLogits = FloatBuffer(count: 0)
        dResid = FloatBuffer(count: n * d); dA = FloatBuffer(count: n * d); dY = FloatBuffer(count: n * d)
        dWide = FloatBuffer(count: n * 4 * d); dQKV = FloatBuffer(count: n * 3 * d)
        scratch = FloatBuffer(count: max(threads, 1) * config.context * config.context)
        selection = (0..<threads).map { _ in SelectionScratch(capacity: 4 * d) }
        activeInputs.deallocate()
        activeInputs = .allocate(capacity: threads * 4 * d)
        ablationScratch = FloatBuffer(count: n * 4 * d + 4 * d + 4 * d)
        tileScratch = FloatBuffer(count: threads * 4 * d * sparseProductTile)
        gatheredWeights = FloatBuffer(count: 4 * d * d)
    }

    /// The logits and dLogits buffers (rows x vocab), only for the full forward.
    func reserveLogits(rows: Int) {
        if logits.count >= rows * config.vocab { return }
        logits = FloatBuffer(count: capacityRows * config.vocab); dLogits = FloatBuffer(count: capacityRows * config.vocab)
    }

    // MARK: forward

    /// Runs the model on `tokens` (batch x length, row-major, each in 0..<vocab, length <= context).
    /// Right-padded prompts are fine: the model is causal. With `ablation`, every node location is
    /// mean-ablated after its AbsTopK (value = m x + (1 - m) mean).
    public func forward(tokens input: [Int32], batch: Int, length: Int, ablation: NodeAblation? = nil) throws {
        guard batch >= 1, length >= 1 else { throw SparseGPTError.badInput("batch \(batch) and length \(length) must be positive") }
        guard length <= config.context else {
            throw SparseGPTError.badInput("sequence length \(length) exceeds the model's context \(config.context)")
        }
        guard input.count == batch * length else {
            throw SparseGPTError.badInput("\(input.count) tokens for batch \(batch) x length \(length)")
        }
        if let bad = input.firstIndex(where: { $0 < 0 || Int($0) >= config.vocab }) {
            throw SparseGPTError.badInput("token \(input[bad]) at index \(bad) is outside the vocabulary 0..<\(config.vocab)")
        }
        if let ablation {
            guard ablation.mask.count == nodes.count, ablation.mean.count == nodes.count else {
                throw SparseGPTError.badInput("ablation has \(ablation.mask.count) masks and \(ablation.mean.count) means for \(nodes.count) nodes")
            }
        }
        reserve(batch: batch, length: length)
        reserveLogits(rows: batch * length)
        self.batch = batch
        self.length = length
        self.tokens = input
        self.sequences = SequenceLayout(batch: batch, length: length, heads: config.nHead)
        self.ablation = ablation
        runForward()
    }

    /// AbsTopK over segments of `segment` entries, then the ablation over rows of `width` channels
    /// starting at node `nodeOffset`. Returns the site's output.
    func finish(_ site: Site, rows: Int, width: Int, segment: Int, nodeOffset: Int) -> UnsafeMutablePointer<Float> {
        let k = keptCount(config.afrac, segment)
        if k < segment {
            timed(.absTopK) {
                absTopKForward(site.value.pointer, keep: site.keep.pointer, rows: rows * width / segment, n: segment, k: k,
                               scratch: selection, threads: threads, interleave: width / segment)
            }
        }
        guard let ablation else { return site.value.pointer }
        if site.ablated == nil || site.ablated!.count < site.value.count { site.ablated = FloatBuffer(count: site.value.count) }
        applyAblation(site.ablated!.pointer, site.value.pointer, rows: rows, width: width, nodeOffset: nodeOffset, ablation)
        return site.ablated!.pointer
    }

    func applyAblation(_ out: FloatPointer, _ x: UnsafePointer<Float>, rows: Int, width: Int, nodeOffset: Int, _ a: NodeAblation) {
        a.mask.withUnsafeBufferPointer { m in
            a.mean.withUnsafeBufferPointer { mu in
                let mp = m.baseAddress! + nodeOffset, mup = mu.baseAddress! + nodeOffset
                for r in 0..<rows {
                    let o = out + r * width, xr = x + r * width
                    for c in 0..<width { o[c] = mp[c] * xr[c] + (1 - mp[c]) * mup[c] }
                }
            }
        }
    }

    /// The block matrices, per layer: c_attn, attn.c_proj, c_fc, mlp.c_proj (offset, rows, cols).
    private var blockMatrices: [[(offset: Int, rows: Int, cols: Int)]] {
        let d = config.dModel
        return (0..<config.nLayer).map { l in
            let w = layout.layer(l)
            return [(w.cAttn, 3 * d, d), (w.attnProj, d, d), (w.cFc, 4 * d, d), (w.mlpProj, d, 4 * d)]
        }
    }

    /// Whether the dense block matrices are bitwise those the compressed ones were built from, under
    /// the same `useSparseKernels`. A content check rather than a change counter: `parameters` is a
    /// public buffer that anyone may write through, and comparing is far cheaper than rebuilding.
    private func sparseWeightsAreCurrent() -> Bool {
        guard let source = sparseSource, sparseBuiltWithSparseKernels == useSparseKernels else { return false }
        if weightsAreFrozen { return true }
        var at = 0
        for layer in blockMatrices {
            for m in layer {
                let count = m.rows * m.cols
                if memcmp(source.pointer + at, parameters.pointer + m.offset, count * MemoryLayout<Float>.stride) != 0 { return false }
                at += count
            }
        }
        return true
    }

    /// Compresses the block matrices whose products are sparse enough to skip zeros (and, for the
    /// task path, the last layer's c_attn split into its q rows and its k, v rows). Skipped when the
    /// weights are unchanged since the last build.
    func prepareSparseWeights() {
        timed(.compressedMatrices) { rebuildSparseWeightsIfChanged() }
    }

    private func rebuildSparseWeightsIfChanged() {
        if sparseWeightsAreCurrent() { return }
        let c = config, d = c.dModel
        let activationDensity = keptCount(c.afrac, d) < d ? c.afrac : 1
        if sparseStore.isEmpty {
            sparseStore = blockMatrices.map { layer in layer.map { SparseMatrix(rows: $0.rows, cols: $0.cols) } }
            sparseSplitStore = [SparseMatrix(rows: d, cols: d), SparseMatrix(rows: 2 * d, cols: d)]
        }
        func compress(_ matrix: SparseMatrix, _ p: UnsafePointer<Float>) -> SparseMatrix? {
            let density = Double(SparseMatrix.countNonzero(p, matrix.rows * matrix.cols)) / Double(matrix.rows * matrix.cols)
            guard useSparseKernels && density * activationDensity <= GPT.sparseProductCutoff else { return nil }
            matrix.rebuild(from: p)
            return matrix
        }
        // Every matrix (the block matrices, then the two halves of the last c_attn) is compressed and
        // copied on its own, so the matrices go to the threads; each writes only its own storage.
        let matrices = blockMatrices
        let lastAttn = parameters.pointer + layout.layer(c.nLayer - 1).cAttn
        let jobs: [(store: SparseMatrix, weights: UnsafeMutablePointer<Float>)] =
            (0..<c.nLayer).flatMap { l in matrices[l].indices.map { (sparseStore[l][$0], parameters.pointer + matrices[l][$0].offset) } }
            + [(sparseSplitStore[0], lastAttn), (sparseSplitStore[1], lastAttn + d * d)]
        let total = matrices.joined().reduce(0) { $0 + $1.rows * $1.cols }
        if sparseSource == nil || sparseSource!.count != total { sparseSource = FloatBuffer(count: total) }
        let source = sparseSource!.pointer
        let blockCount = jobs.count - 2
        var sourceOffsets = [Int](), at = 0
        for m in matrices.joined() { sourceOffsets.append(at); at += m.rows * m.cols }
        var built = [SparseMatrix?](repeating: nil, count: jobs.count)
        built.withUnsafeMutableBufferPointer { out in
            parallelFor(jobs.count, threads: threads) { i in
                let job = jobs[i]
                out[i] = compress(job.store, job.weights)
                if i < blockCount {
                    (source + sourceOffsets[i]).update(from: job.weights, count: job.store.rows * job.store.cols)
                }
            }
        }
        var next = 0
        sparseWeights = matrices.map { layer in layer.map { _ in defer { next += 1 }; return built[next] } }
        sparseSplit = [built[blockCount], built[blockCount + 1]]
        sparseBuiltWithSparseKernels = useSparseKernels
    }

    /// out = input @ W^T, skipping zeros when W is compressed. `ablatedAt` is the first node of the
    /// site `input` comes from when it is that site's ablated output.
    func linear(_ out: FloatPointer, _ input: UnsafePointer<Float>, weight offset: Int, rows: Int, inFeatures: Int,
                        outFeatures: Int, sparse: SparseMatrix?, ablatedAt nodeOffset: Int? = nil) {
        timed(.forwardProducts) {
            denseOrSparseProduct(out, input, weight: offset, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, sparse: sparse,
                          ablatedAt: nodeOffset)
        }
    }

    private func denseOrSparseProduct(_ out: FloatPointer, _ input: UnsafePointer<Float>, weight offset: Int, rows: Int, inFeatures: Int,
                               outFeatures: Int, sparse: SparseMatrix?, ablatedAt nodeOffset: Int?) {
        if let sparse, let ablation, let nodeOffset, separatesPrunedColumns {
            ablatedSparseProduct(out, input, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, sparse: sparse,
                                 ablation: ablation, nodeOffset: nodeOffset)
        } else if let sparse {
            sparse.productWithTranspose(out, input, rows: rows, scratch: tileScratch.pointer, indices: activeInputs, threads: threads)
        } else if let ablation, let nodeOffset, separatesPrunedColumns {
            ablatedDenseProduct(out, input, weight: parameters.pointer + offset, rows: rows, inFeatures: inFeatures,
                                outFeatures: outFeatures, ablation: ablation, nodeOffset: nodeOffset)
        } else {
            linearForward(out, input, weight: parameters.pointer + offset, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, threads: threads)
        }
    }

    /// Splits an ablated site's columns: a node with mask 0 holds its mean on every row, so its
    /// column goes into `pruned` (its mean; 0 for the other columns) to be multiplied once, and the
    /// other columns are listed in `activeInputs`. Returns how many are listed.
    private func splitPrunedColumns(_ ablation: NodeAblation, nodeOffset: Int, inFeatures: Int,
                                    pruned: FloatPointer) -> Int {
        var kept = 0
        ablation.mask.withUnsafeBufferPointer { m in
            ablation.mean.withUnsafeBufferPointer { mu in
                for j in 0..<inFeatures {
                    let isPruned = m[nodeOffset + j] == 0
                    pruned[j] = isPruned ? mu[nodeOffset + j] : 0
                    if !isPruned { activeInputs[kept] = Int32(j); kept += 1 }
                }
            }
        }
        return kept
    }

    /// The product of an ablated site's output with a compressed W: the pruned columns' product
    /// (`splitPrunedColumns`) starts every row, and the rows then visit only the kept columns'
    /// nonzero entries (AbsTopK and the mask leave few).
    func ablatedSparseProduct(_ out: FloatPointer, _ input: UnsafePointer<Float>, rows: Int, inFeatures: Int, outFeatures: Int,
                              sparse: SparseMatrix, ablation: NodeAblation, nodeOffset: Int) {
        let pruned = ablationScratch.pointer, prunedProduct = pruned + inFeatures
        let columns = activeInputs
        let kept = splitPrunedColumns(ablation, nodeOffset: nodeOffset, inFeatures: inFeatures, pruned: pruned)
        let start = sparse.colStart, index = sparse.colIndex, value = sparse.colValue
        prunedProduct.update(repeating: 0, count: outFeatures)
        for j in 0..<inFeatures where pruned[j] != 0 {
            for e in Int(start[j])..<Int(start[j + 1]) { prunedProduct[Int(index[e])] += pruned[j] * value[e] }
        }
        let parts = fixedChunks(rows, minimumSize: 8)
        parallelFor(parts, threads: threads) { part in
            for r in chunkRange(rows, parts: parts, part) {
                let o = out + r * outFeatures, a = input + r * inFeatures
                o.update(from: prunedProduct, count: outFeatures)
                for c in 0..<kept {
                    let j = Int(columns[c]), aj = a[j]
                    if aj == 0 { continue }
                    for e in Int(start[j])..<Int(start[j + 1]) { o[Int(index[e])] += aj * value[e] }
                }
            }
        }
    }

    /// The dense product of an ablated site's output: the pruned columns' product
    /// (`splitPrunedColumns`) is added to each row, and the kept columns, gathered, run as sgemm.
    /// Pruning keeps few nodes, so this shrinks most products of mask training.
    func ablatedDenseProduct(_ out: FloatPointer, _ input: UnsafePointer<Float>, weight: UnsafePointer<Float>, rows: Int,
                             inFeatures: Int, outFeatures: Int, ablation: NodeAblation, nodeOffset: Int) {
        let gathered = ablationScratch.pointer
        let pruned = gathered + rows * inFeatures, prunedProduct = pruned + inFeatures
        let columns = activeInputs
        let k = splitPrunedColumns(ablation, nodeOffset: nodeOffset, inFeatures: inFeatures, pruned: pruned)
        guard 2 * k <= inFeatures else {
            linearForward(out, input, weight: weight, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, threads: threads)
            return
        }
        let gatheredWeight = gatheredWeights.pointer
        for o in 0..<outFeatures {
            let w = weight + o * inFeatures
            var sum: Float = 0
            for j in 0..<inFeatures where pruned[j] != 0 { sum += w[j] * pruned[j] }
            prunedProduct[o] = sum
            for t in 0..<k { gatheredWeight[o * k + t] = w[Int(columns[t])] }
        }
        for r in 0..<rows {
            let a = input + r * inFeatures, g = gathered + r * k
            for t in 0..<k { g[t] = a[Int(columns[t])] }
        }
        if k > 0 {
            linearForward(out, gathered, weight: gatheredWeight, rows: rows, inFeatures: k, outFeatures: outFeatures, threads: threads)
        } else {
            out.update(repeating: 0, count: rows * outFeatures)
        }
        for r in 0..<rows {
            let o = out + r * outFeatures
            for i in 0..<outFeatures { o[i] += prunedProduct[i] }
        }
    }

    /// dInput = dOut @ W (skipping zeros when W is compressed) and dWeight += dOut^T @ input (dense: Adam needs all of it).
    func linearGrad(dInput: FloatPointer, dWeight: FloatPointer?, dOut: UnsafePointer<Float>, _ input: UnsafePointer<Float>,
                            weight offset: Int, rows: Int, inFeatures: Int, outFeatures: Int, sparse: SparseMatrix?) {
        timed(.inputGradients) {
            if let sparse {
                sparse.product(dInput, dOut, rows: rows, scratch: tileScratch.pointer, indices: activeInputs, threads: threads)
            } else {
                linearBackward(dInput: dInput, dWeight: nil, dOut: dOut, input, weight: parameters.pointer + offset,
                               rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, threads: threads)
            }
        }
        guard let dWeight else { return }
        timed(.weightGradients) {
            linearBackward(dInput: nil, dWeight: dWeight, dOut: dOut, input, weight: parameters.pointer + offset,
                           rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, threads: threads)
        }
    }

    func runForward() {
        let c = config, d = c.dModel, rows = batch * length
        let P = parameters.pointer
        prepareSparseWeights()
        tokens.withUnsafeBufferPointer { t in
            embeddingForward(residuals[0].pointer, tokens: t.baseAddress!, wte: P + layout.wte, wpe: P + layout.wpe,
                             layout: sequences, d: d)
        }
        for l in 0..<c.nLayer { blockForward(l, rows: rows) }
        let xf = finalInput
        rmsnormForward(lnfOut.pointer, rstd: rstdF.pointer, xf, gain: P + layout.lnF, rows: rows, d: d, threads: threads)
        linear(logits.pointer, lnfOut.pointer, weight: layout.lmHead, rows: rows, inFeatures: d, outFeatures: c.vocab, sparse: nil)
    }

    /// Block `l` on all `rows` rows of `sequences`: residuals[l] -> residuals[l + 1].
    func blockForward(_ l: Int, rows: Int) {
        let c = config, d = c.dModel
        let P = parameters.pointer
        let w = layout.layer(l), a = blocks[l]
        let x = residuals[l].pointer
        rmsnormForward(a.attnIn.value.pointer, rstd: a.rstd1.pointer, x, gain: P + w.ln1, rows: rows, d: d, threads: threads)
        let h1 = finish(a.attnIn, rows: rows, width: d, segment: d, nodeOffset: nodes.offset(layer: l, .attnIn))
        let sw = sparseWeights[l]
        linear(a.qkv.value.pointer, h1, weight: w.cAttn, rows: rows, inFeatures: d, outFeatures: 3 * d, sparse: sw[0],
               ablatedAt: nodes.offset(layer: l, .attnIn))
        let qkv = finish(a.qkv, rows: rows, width: 3 * d, segment: d, nodeOffset: nodes.offset(layer: l, .q))
        timed(.attention) {
            attentionForward(a.attnY.pointer, probs: a.probs.pointer, qkv: qkv, layout: sequences, d: d, dHead: c.dHead, threads: threads)
        }
        linear(a.attnOut.value.pointer, a.attnY.pointer, weight: w.attnProj, rows: rows, inFeatures: d, outFeatures: d, sparse: nil)
        let ao = finish(a.attnOut, rows: rows, width: d, segment: d, nodeOffset: nodes.offset(layer: l, .attnOut))
        let x2 = a.residMid.pointer
        for i in 0..<rows * d { x2[i] = x[i] + ao[i] }
        mlpForward(a.mlp, layer: l, x2, into: residuals[l + 1].pointer, rows: rows)
    }

    /// The MLP half of block `l` over `rows` rows: out = x2 + mlp_out(gelu(c_fc(rmsnorm(x2)))), each
    /// node site through AbsTopK and the ablation.
    func mlpForward(_ m: MLPActivations, layer l: Int, _ x2: UnsafePointer<Float>, into out: FloatPointer, rows: Int) {
        let d = config.dModel, w = layout.layer(l), sw = sparseWeights[l]
        rmsnormForward(m.mlpIn.value.pointer, rstd: m.rstd2.pointer, x2, gain: parameters.pointer + w.ln2, rows: rows, d: d, threads: threads)
        let h2 = finish(m.mlpIn, rows: rows, width: d, segment: d, nodeOffset: nodes.offset(layer: l, .mlpIn))
        linear(m.fcPre.pointer, h2, weight: w.cFc, rows: rows, inFeatures: d, outFeatures: 4 * d, sparse: sw[2],
               ablatedAt: nodes.offset(layer: l, .mlpIn))
        geluForward(m.mlpNeuron.value.pointer, tanhOut: m.geluTanh.pointer, m.fcPre.pointer, count: rows * 4 * d, threads: threads)
        let hn = finish(m.mlpNeuron, rows: rows, width: 4 * d, segment: 4 * d, nodeOffset: nodes.offset(layer: l, .mlpNeuron))
        linear(m.mlpOut.value.pointer, hn, weight: w.mlpProj, rows: rows, inFeatures: 4 * d, outFeatures: d, sparse: sw[3],
               ablatedAt: nodes.offset(layer: l, .mlpNeuron))
        let mo = finish(m.mlpOut, rows: rows, width: d, segment: d, nodeOffset: nodes.offset(layer: l, .mlpOut))
        for i in 0..<rows * d { out[i] = x2[i] + mo[i] }
    }

    /// The residual read by ln_f: the last residual, mean-ablated at final_resid when ablating.
    var finalInput: UnsafeMutablePointer<Float> {
        let rows = batch * length, d = config.dModel
        let last = residuals[config.nLayer]
        guard let ablation else { return last.pointer }
        if finalAblated == nil { finalAblated = FloatBuffer(count: last.count) }
        applyAblation(finalAblated!.pointer, last.pointer, rows: rows, width: d, nodeOffset: nodes.finalResidOffset, ablation)
        return finalAblated!.pointer
    }

    /// Mean next-token cross-entropy of the last forward's logits against `targets` (batch x length);
    /// also fills `dLogits` with its gradient.
    public func crossEntropy(targets: [Int32]) throws -> Float {
        let rows = batch * length
        guard targets.count == rows else { throw SparseGPTError.badInput("\(targets.count) targets for \(rows) positions") }
        if let bad = targets.firstIndex(where: { $0 < 0 || Int($0) >= config.vocab }) {
            throw SparseGPTError.badInput("target \(targets[bad]) at index \(bad) is outside the vocabulary 0..<\(config.vocab)")
        }
        return targets.withUnsafeBufferPointer {
            SparseGPT.crossEntropy(logits: logits.pointer, targets: $0.baseAddress!, rows: rows, vocab: config.vocab, dLogits: dLogits.pointer,
                                   threads: threads)
        }
    }

    /// Column sums (float64) of every node's value over all rows of the last forward, added to `sums`
    /// (global node order): the values after AbsTopK and before any ablation, as the reference's node_means.
    public func accumulateNodeSums(into sums: inout [Double]) {
        precondition(sums.count == nodes.count, "node sums need \(nodes.count) entries")
        let rows = batch * length, d = config.dModel
        func add(_ x: UnsafePointer<Float>, width: Int, offset: Int) {
            sums.withUnsafeMutableBufferPointer { s in
                for r in 0..<rows {
                    let xr = x + r * width
                    for c in 0..<width { s[offset + c] += Double(xr[c]) }
                }
            }
        }
        for l in 0..<config.nLayer {
            let a = blocks[l]
            add(a.attnIn.value.pointer, width: d, offset: nodes.offset(layer: l, .attnIn))
            add(a.qkv.value.pointer, width: 3 * d, offset: nodes.offset(layer: l, .q))
            add(a.attnOut.value.pointer, width: d, offset: nodes.offset(layer: l, .attnOut))
            add(a.mlp.mlpIn.value.pointer, width: d, offset: nodes.offset(layer: l, .mlpIn))
            add(a.mlp.mlpNeuron.value.pointer, width: 4 * d, offset: nodes.offset(layer: l, .mlpNeuron))
            add(a.mlp.mlpOut.value.pointer, width: d, offset: nodes.offset(layer: l, .mlpOut))
        }
        add(residuals[config.nLayer].pointer, width: d, offset: nodes.finalResidOffset)
    }

    /// Per-node means over all positions of `sequences` (count x length tokens), unablated model,
    /// float64 accumulation, run in batches of `batch` sequences (the reference's node_means).
    public func nodeMeans(sequences: [Int32], count: Int, length: Int, batch: Int = 64) throws -> [Float] {
        guard count >= 1, sequences.count == count * length else {
            throw SparseGPTError.badInput("\(sequences.count) tokens for \(count) sequences of length \(length)")
        }
        var sums = [Double](repeating: 0, count: nodes.count)
        var start = 0
        while start < count {
            let n = min(batch, count - start)
            try forward(tokens: Array(sequences[start * length..<(start + n) * length]), batch: n, length: length)
            accumulateNodeSums(into: &sums)
            start += n
        }
        let total = Double(count * length)
        return sums.map { Float($0 / total) }
    }

    // MARK: backward

    /// Backward of the last forward from `dLogits` (batch x length x vocab; may be zero except at a few
    /// positions). With `parameterGradients`, `gradients` is overwritten with d loss / d parameters;
    /// without, only activation gradients run (pruning). After an ablated forward `nodeMaskGradient` holds
    /// d loss / d mask per node.
    public func backward(dLogits input: [Float], parameterGradients: Bool) throws {
        let rows = batch * length
        guard rows > 0 else { throw SparseGPTError.badInput("backward before any forward") }
        guard input.count == rows * config.vocab else {
            throw SparseGPTError.badInput("dLogits has \(input.count) values, expected \(rows * config.vocab)")
        }
        input.withUnsafeBufferPointer { dLogits.pointer.update(from: $0.baseAddress!, count: input.count) }
        runBackward(parameterGradients: parameterGradients)
    }

    /// Backward from the `dLogits` buffer that `crossEntropy(targets:)` filled.
    public func backwardFromLoss(parameterGradients: Bool = true) {
        precondition(batch * length > 0, "backward before any forward")
        runBackward(parameterGradients: parameterGradients)
    }

    /// Ablation and AbsTopK backward of one site, in place on grad: d mask accumulates
    /// sum grad * (x - mean), then grad *= mask, then grad *= keep.
    func siteBackward(_ grad: FloatPointer, value: UnsafePointer<Float>, keep: UnsafePointer<UInt8>?, rows: Int, width: Int,
                              nodeOffset: Int) {
        if let ablation {
            ablation.mask.withUnsafeBufferPointer { m in
                ablation.mean.withUnsafeBufferPointer { mu in
                    nodeGradientSums.withUnsafeMutableBufferPointer { s in
                        let mp = m.baseAddress! + nodeOffset, mup = mu.baseAddress! + nodeOffset, sp = s.baseAddress! + nodeOffset
                        for r in 0..<rows {
                            let g = grad + r * width, x = value + r * width
                            for c in 0..<width {
                                sp[c] += Double(g[c] * (x[c] - mup[c]))
                                g[c] *= mp[c]
                            }
                        }
                    }
                }
            }
        }
        if let keep { timed(.absTopK) { absTopKBackward(grad, keep: keep, count: rows * width, threads: threads) } }
    }

    func runBackward(parameterGradients: Bool) {
        let c = config, d = c.dModel, rows = batch * length
        let P = parameters.pointer
        let G: FloatPointer? = parameterGradients ? gradients.pointer : nil
        if parameterGradients { gradients.zero() }
        if ablation != nil { nodeGradientSums = [Double](repeating: 0, count: nodes.count) }
        func g(_ offset: Int) -> FloatPointer? { G.map { $0 + offset } }

        linearGrad(dInput: dA.pointer, dWeight: g(layout.lmHead), dOut: dLogits.pointer, lnfOut.pointer, weight: layout.lmHead,
                   rows: rows, inFeatures: d, outFeatures: c.vocab, sparse: nil)
        let dR = dResid.pointer
        dResid.zero()
        let xf = ablation == nil ? residuals[c.nLayer].pointer : finalAblated!.pointer
        rmsnormBackward(dX: dR, dGain: g(layout.lnF), dOut: dA.pointer, xf, rstd: rstdF.pointer, gain: P + layout.lnF, rows: rows, d: d,
                        threads: threads)
        if ablation != nil {
            siteBackward(dR, value: residuals[c.nLayer].pointer, keep: nil, rows: rows, width: d, nodeOffset: nodes.finalResidOffset)
        }
        for l in stride(from: c.nLayer - 1, through: 0, by: -1) { blockBackward(l, rows: rows, gradients: G) }
        if let G {
            tokens.withUnsafeBufferPointer { t in
                embeddingBackward(dWte: G + layout.wte, dWpe: G + layout.wpe, dOut: dR, tokens: t.baseAddress!, layout: sequences, d: d)
            }
        }
        if ablation != nil { nodeMaskGradient = nodeGradientSums.map { Float($0) } }
    }

    /// Backward of `mlpForward`: from d loss / d out in `dR` to d loss / d x2 in `dR` (`dA`, `dWide`
    /// are scratch of rows × d and rows × 4d); parameter gradients into `G` when given.
    func mlpBackward(_ m: MLPActivations, layer l: Int, residMid: UnsafePointer<Float>, dResid dR: FloatPointer, dA: FloatPointer,
                     dWide: FloatPointer, rows: Int, gradients G: FloatPointer?) {
        let c = config, d = c.dModel, w = layout.layer(l), sw = sparseWeights[l]
        func g(_ offset: Int) -> FloatPointer? { G.map { $0 + offset } }
        func out(_ s: Site) -> FloatPointer { ablation == nil ? s.value.pointer : s.ablated!.pointer }
        let sparseActivations = keptCount(c.afrac, d) < d
        let neuronTopK = keptCount(c.afrac, 4 * d) < 4 * d
        dA.update(from: dR, count: rows * d)
        siteBackward(dA, value: m.mlpOut.value.pointer, keep: sparseActivations ? m.mlpOut.keep.pointer : nil,
                     rows: rows, width: d, nodeOffset: nodes.offset(layer: l, .mlpOut))
        linearGrad(dInput: dWide, dWeight: g(w.mlpProj), dOut: dA, out(m.mlpNeuron), weight: w.mlpProj,
                   rows: rows, inFeatures: 4 * d, outFeatures: d, sparse: sw[3])
        siteBackward(dWide, value: m.mlpNeuron.value.pointer, keep: neuronTopK ? m.mlpNeuron.keep.pointer : nil,
                     rows: rows, width: 4 * d, nodeOffset: nodes.offset(layer: l, .mlpNeuron))
        geluBackward(dWide, m.fcPre.pointer, tanh: m.geluTanh.pointer, count: rows * 4 * d, threads: threads)
        linearGrad(dInput: dA, dWeight: g(w.cFc), dOut: dWide, out(m.mlpIn), weight: w.cFc,
                   rows: rows, inFeatures: d, outFeatures: 4 * d, sparse: sw[2])
        siteBackward(dA, value: m.mlpIn.value.pointer, keep: sparseActivations ? m.mlpIn.keep.pointer : nil,
                     rows: rows, width: d, nodeOffset: nodes.offset(layer: l, .mlpIn))
        rmsnormBackward(dX: dR, dGain: g(w.ln2), dOut: dA, residMid, rstd: m.rstd2.pointer, gain: parameters.pointer + w.ln2,
                        rows: rows, d: d, threads: threads)
    }

    /// Backward of block `l` over all `rows` rows: from d loss / d residuals[l + 1] in dResid to
    /// d loss / d residuals[l] in dResid; parameter gradients into `G` when given.
    func blockBackward(_ l: Int, rows: Int, gradients G: FloatPointer?) {
        let c = config, d = c.dModel
        let P = parameters.pointer
        func g(_ offset: Int) -> FloatPointer? { G.map { $0 + offset } }
        let sparseActivations = keptCount(c.afrac, d) < d
        let dR = dResid.pointer
        let w = layout.layer(l), a = blocks[l], sw = sparseWeights[l]
        func out(_ s: Site) -> FloatPointer { ablation == nil ? s.value.pointer : s.ablated!.pointer }
        mlpBackward(a.mlp, layer: l, residMid: a.residMid.pointer, dResid: dR, dA: dA.pointer, dWide: dWide.pointer, rows: rows,
                    gradients: G)
        // attention
        dA.pointer.update(from: dR, count: rows * d)
        siteBackward(dA.pointer, value: a.attnOut.value.pointer, keep: sparseActivations ? a.attnOut.keep.pointer : nil,
                     rows: rows, width: d, nodeOffset: nodes.offset(layer: l, .attnOut))
        linearGrad(dInput: dY.pointer, dWeight: g(w.attnProj), dOut: dA.pointer, a.attnY.pointer, weight: w.attnProj,
                   rows: rows, inFeatures: d, outFeatures: d, sparse: sw[1])
        timed(.attention) {
            attentionBackward(dQKV: dQKV.pointer, dOut: dY.pointer, probs: a.probs.pointer, qkv: out(a.qkv), layout: sequences,
                              d: d, dHead: c.dHead, threads: threads, scratch: scratch.pointer)
        }
        siteBackward(dQKV.pointer, value: a.qkv.value.pointer, keep: sparseActivations ? a.qkv.keep.pointer : nil,
                     rows: rows, width: 3 * d, nodeOffset: nodes.offset(layer: l, .q))
        linearGrad(dInput: dA.pointer, dWeight: g(w.cAttn), dOut: dQKV.pointer, out(a.attnIn), weight: w.cAttn,
                   rows: rows, inFeatures: d, outFeatures: 3 * d, sparse: sw[0])
        siteBackward(dA.pointer, value: a.attnIn.value.pointer, keep: sparseActivations ? a.attnIn.keep.pointer : nil,
                     rows: rows, width: d, nodeOffset: nodes.offset(layer: l, .attnIn))
        rmsnormBackward(dX: dR, dGain: g(w.ln1), dOut: dA.pointer, residuals[l].pointer, rstd: a.rstd1.pointer, gain: P + w.ln1,
                        rows: rows, d: d, threads: threads)
    }
}
