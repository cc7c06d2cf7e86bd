import Foundation

/// The last block's activations at the prompts' answer rows (their last positions), S rows.
final class AnswerActivations {
    let capacity: Int
    let probsCapacity: Int
    let q, attnOut: Site
    let h1, attnY, residMid, resid, finalAblated, rstdF, lnf, probs: FloatBuffer
    let mlp: MLPActivations
    let dR, dA, dY, dWide, dQ, dH: FloatBuffer

    init(rows n: Int, probs: Int, d: Int) {
        capacity = n
        probsCapacity = probs
        q = Site(count: n * d); attnOut = Site(count: n * d)
        h1 = FloatBuffer(count: n * d); attnY = FloatBuffer(count: n * d); residMid = FloatBuffer(count: n * d)
        mlp = MLPActivations(rows: n, d: d)
        resid = FloatBuffer(count: n * d); finalAblated = FloatBuffer(count: n * d); rstdF = FloatBuffer(count: n); lnf = FloatBuffer(count: n * d)
        self.probs = FloatBuffer(count: probs)
        dR = FloatBuffer(count: n * d); dA = FloatBuffer(count: n * d); dY = FloatBuffer(count: n * d)
        dWide = FloatBuffer(count: n * 4 * d); dQ = FloatBuffer(count: n * d); dH = FloatBuffer(count: n * d)
    }
}

extension GPT {
    /// The task loss of the method (as `forward` + `taskLoss(lengths:candidates:)`) and, with `maskGradient`,
    /// d loss / d mask per node (as `backward` after an ablated forward), computing only what the loss
    /// depends on.
    ///
    /// `tokens` holds the prompts one after another without padding (prompt p has `lengths[p]` tokens);
    /// `candidates[p]` = (correct, wrong) token ids, read at the prompt's last position. All blocks but
    /// the last run on every position; the last block runs its attention input (norm, AbsTopK) and its
    /// k and v at every position but everything else (q, attention, attn.c_proj, the MLP, ln_f) only at
    /// each prompt's last position, and only the two candidate logits are computed. The backward mirrors
    /// it without parameter gradients. The loss is the mean over prompts.
    ///
    /// Afterwards the model holds no full forward (`batch` and `length` are 0).
    public func answerTaskLoss(tokens input: [Int32], lengths: [Int32], candidates: [(correct: Int32, wrong: Int32)],
                               ablation: NodeAblation?, maskGradient: Bool) throws -> (loss: Float, maskGradient: [Float]?) {
        guard ablation != nil || !maskGradient else { throw SparseGPTError.badInput("a mask gradient needs an ablation") }
        try beginAnswer(tokens: input, lengths: lengths, candidates: candidates, ablation: ablation)
        let S = lengths.count
        let pairLogits = answerForward(candidates: candidates)
        var loss: Double = 0
        var dLogits = [(Float, Float)](repeating: (0, 0), count: S)
        let inv = 1 / Float(S)
        for p in 0..<S {
            let (a, b) = pairLogits[p]
            let m = max(a, b)
            let ea = expf(a - m), eb = expf(b - m)
            loss += Double(m + logf(ea + eb) - a)
            dLogits[p] = ((ea / (ea + eb) - 1) * inv, eb / (ea + eb) * inv)
        }
        guard maskGradient else { return (Float(loss / Double(S)), nil) }
        answerBackward(candidates: candidates, dLogits: dLogits)
        return (Float(loss / Double(S)), nodeMaskGradient)
    }

    /// The (correct, wrong) logits at each prompt's last position, by the task path (inputs as
    /// `answerTaskLoss`): what calibration reads, at the cost of the task loss's forward.
    public func answerLogits(tokens input: [Int32], lengths: [Int32], candidates: [(correct: Int32, wrong: Int32)],
                             ablation: NodeAblation?) throws -> [(correct: Float, wrong: Float)] {
        try beginAnswer(tokens: input, lengths: lengths, candidates: candidates, ablation: ablation)
        return answerForward(candidates: candidates).map { (correct: $0.0, wrong: $0.1) }
    }

    /// Checks the task path's inputs and sets the model up to run them.
    private func beginAnswer(tokens input: [Int32], lengths: [Int32], candidates: [(correct: Int32, wrong: Int32)],
                             ablation: NodeAblation?) throws {
        let c = config, S = lengths.count
        guard S >= 1, candidates.count == S else {
            throw SparseGPTError.badInput("task loss needs at least one prompt and one candidate pair per prompt (\(S) prompts, \(candidates.count) pairs)")
        }
        for (p, n) in lengths.enumerated() where n < 1 || Int(n) > c.context {
            throw SparseGPTError.badInput("prompt \(p) has length \(n), outside 1...\(c.context)")
        }
        let total = lengths.reduce(0) { $0 + Int($1) }
        guard input.count == total else { throw SparseGPTError.badInput("\(input.count) tokens for prompts of \(total) tokens in all") }
        if let bad = input.firstIndex(where: { $0 < 0 || Int($0) >= c.vocab }) {
            throw SparseGPTError.badInput("token \(input[bad]) at index \(bad) is outside the vocabulary 0..<\(c.vocab)")
        }
        for (p, pair) in candidates.enumerated() where pair.correct < 0 || Int(pair.correct) >= c.vocab || pair.wrong < 0 || Int(pair.wrong) >= c.vocab {
            throw SparseGPTError.badInput("prompt \(p) has candidate tokens (\(pair.correct), \(pair.wrong)) outside the vocabulary")
        }
        if let ablation {
            guard ablation.mask.count == nodes.count, ablation.mean.count == nodes.count else {
                throw SparseGPTError.badInput("ablation has \(ablation.mask.count) masks and \(ablation.mean.count) means for \(nodes.count) nodes")
            }
        }

        let seq = SequenceLayout(lengths: lengths.map(Int.init), heads: c.nHead)
        reserve(rows: seq.rows, probs: seq.probCount)
        if answer == nil || answer!.capacity < S || answer!.probsCapacity < seq.rows * c.nHead {
            let n = max(S, answer?.capacity ?? 0)
            answer = AnswerActivations(rows: n, probs: max(seq.rows * c.nHead, answer?.probsCapacity ?? 0), d: c.dModel)
        }
        batch = 0
        length = 0
        tokens = input
        sequences = seq
        self.ablation = ablation
    }

    /// Rows of the prompts' last positions.
    private var answerRows: [Int] { zip(sequences.starts, sequences.lengths).map { $0 + $1 - 1 } }

    /// Forward of the task path; returns the (correct, wrong) logits per prompt.
    private func answerForward(candidates: [(correct: Int32, wrong: Int32)]) -> [(Float, Float)] {
        let c = config, d = c.dModel, rows = sequences.rows, S = sequences.count, L = c.nLayer - 1
        let P = parameters.pointer, A = answer!
        prepareSparseWeights()
        tokens.withUnsafeBufferPointer { t in
            embeddingForward(residuals[0].pointer, tokens: t.baseAddress!, wte: P + layout.wte, wpe: P + layout.wpe,
                             layout: sequences, d: d)
        }
        for l in 0..<L { blockForward(l, rows: rows) }

        // last block: attention input and k, v everywhere
        let w = layout.layer(L), a = blocks[L], x = residuals[L].pointer
        let answerRows = self.answerRows
        rmsnormForward(a.attnIn.value.pointer, rstd: a.rstd1.pointer, x, gain: P + w.ln1, rows: rows, d: d, threads: threads)
        let h1 = finish(a.attnIn, rows: rows, width: d, segment: d, nodeOffset: nodes.offset(layer: L, .attnIn))
        linear(a.qkv.value.pointer, h1, weight: w.cAttn + d * d, rows: rows, inFeatures: d, outFeatures: 2 * d, sparse: sparseSplit[1],
               ablatedAt: nodes.offset(layer: L, .attnIn))
        let kv = finish(a.qkv, rows: rows, width: 2 * d, segment: d, nodeOffset: nodes.offset(layer: L, .k))
        // the rest at the answer rows
        for (s, r) in answerRows.enumerated() { (A.h1.pointer + s * d).update(from: h1 + r * d, count: d) }
        linear(A.q.value.pointer, A.h1.pointer, weight: w.cAttn, rows: S, inFeatures: d, outFeatures: d, sparse: sparseSplit[0],
               ablatedAt: nodes.offset(layer: L, .attnIn))
        let q = finish(A.q, rows: S, width: d, segment: d, nodeOffset: nodes.offset(layer: L, .q))
        lastQueryAttentionForward(A.attnY.pointer, probs: A.probs.pointer, q: q, kv: kv, layout: sequences, d: d, dHead: c.dHead,
                                  threads: threads)
        linearForward(A.attnOut.value.pointer, A.attnY.pointer, weight: P + w.attnProj, rows: S, inFeatures: d, outFeatures: d, threads: threads)
        let ao = finish(A.attnOut, rows: S, width: d, segment: d, nodeOffset: nodes.offset(layer: L, .attnOut))
        let x2 = A.residMid.pointer
        for (s, r) in answerRows.enumerated() {
            for i in 0..<d { x2[s * d + i] = x[r * d + i] + ao[s * d + i] }
        }
        mlpForward(A.mlp, layer: L, x2, into: A.resid.pointer, rows: S)
        let xf = answerFinalInput
        rmsnormForward(A.lnf.pointer, rstd: A.rstdF.pointer, xf, gain: P + layout.lnF, rows: S, d: d, threads: threads)
        // the two candidate logits
        let head = P + layout.lmHead
        return candidates.enumerated().map { s, pair in
            let f = A.lnf.pointer + s * d, good = head + Int(pair.correct) * d, bad = head + Int(pair.wrong) * d
            var a: Float = 0, b: Float = 0
            for i in 0..<d { a += f[i] * good[i]; b += f[i] * bad[i] }
            return (a, b)
        }
    }

    /// The last residual at the answer rows as ln_f reads it: mean-ablated at final_resid when ablating.
    private var answerFinalInput: FloatPointer {
        let A = answer!, S = sequences.count, d = config.dModel
        guard let ablation else { return A.resid.pointer }
        applyAblation(A.finalAblated.pointer, A.resid.pointer, rows: S, width: d, nodeOffset: nodes.finalResidOffset, ablation)
        return A.finalAblated.pointer
    }

    /// Backward of the task path from d loss / d (correct, wrong) logit per prompt: fills `nodeMaskGradient`.
    private func answerBackward(candidates: [(correct: Int32, wrong: Int32)], dLogits: [(Float, Float)]) {
        let c = config, d = c.dModel, rows = sequences.rows, S = sequences.count, L = c.nLayer - 1
        let P = parameters.pointer, A = answer!
        let sparseActivations = keptCount(c.afrac, d) < d
        nodeGradientSums = [Double](repeating: 0, count: nodes.count)
        let w = layout.layer(L), a = blocks[L], sw = sparseWeights[L]
        func out(_ s: Site) -> FloatPointer { ablation == nil ? s.value.pointer : s.ablated!.pointer }
        let answerRows = self.answerRows

        // lm_head rows of the candidates, then ln_f and final_resid
        let head = P + layout.lmHead
        for (s, pair) in candidates.enumerated() {
            let g = A.dA.pointer + s * d, good = head + Int(pair.correct) * d, bad = head + Int(pair.wrong) * d
            let (dg, db) = dLogits[s]
            for i in 0..<d { g[i] = dg * good[i] + db * bad[i] }
        }
        let dR = A.dR.pointer
        A.dR.zero()
        rmsnormBackward(dX: dR, dGain: nil, dOut: A.dA.pointer, ablation == nil ? A.resid.pointer : A.finalAblated.pointer, rstd: A.rstdF.pointer, gain: P + layout.lnF,
                        rows: S, d: d, threads: threads)
        siteBackward(dR, value: A.resid.pointer, keep: nil, rows: S, width: d, nodeOffset: nodes.finalResidOffset)
        // MLP at the answer rows
        mlpBackward(A.mlp, layer: L, residMid: A.residMid.pointer, dResid: dR, dA: A.dA.pointer, dWide: A.dWide.pointer, rows: S,
                    gradients: nil)
        // attention at the answer rows
        A.dA.pointer.update(from: dR, count: S * d)
        siteBackward(A.dA.pointer, value: A.attnOut.value.pointer, keep: sparseActivations ? A.attnOut.keep.pointer : nil,
                     rows: S, width: d, nodeOffset: nodes.offset(layer: L, .attnOut))
        linearGrad(dInput: A.dY.pointer, dWeight: nil, dOut: A.dA.pointer, A.attnY.pointer, weight: w.attnProj,
                   rows: S, inFeatures: d, outFeatures: d, sparse: sw[1])
        lastQueryAttentionBackward(dQ: A.dQ.pointer, dKV: dQKV.pointer, dOut: A.dY.pointer, probs: A.probs.pointer, q: out(A.q),
                                   kv: out(a.qkv), layout: sequences, d: d, dHead: c.dHead, threads: threads, scratch: scratch.pointer)
        siteBackward(A.dQ.pointer, value: A.q.value.pointer, keep: sparseActivations ? A.q.keep.pointer : nil,
                     rows: S, width: d, nodeOffset: nodes.offset(layer: L, .q))
        siteBackward(dQKV.pointer, value: a.qkv.value.pointer, keep: sparseActivations ? a.qkv.keep.pointer : nil,
                     rows: rows, width: 2 * d, nodeOffset: nodes.offset(layer: L, .k))
        // attention input: k, v from every row, q from the answer rows
        linearGrad(dInput: dA.pointer, dWeight: nil, dOut: dQKV.pointer, out(a.attnIn), weight: w.cAttn + d * d,
                   rows: rows, inFeatures: d, outFeatures: 2 * d, sparse: sparseSplit[1])
        linearGrad(dInput: A.dH.pointer, dWeight: nil, dOut: A.dQ.pointer, A.h1.pointer, weight: w.cAttn,
                   rows: S, inFeatures: d, outFeatures: d, sparse: sparseSplit[0])
        for (s, r) in answerRows.enumerated() {
            let g = dA.pointer + r * d, h = A.dH.pointer + s * d
            for i in 0..<d { g[i] += h[i] }
        }
        siteBackward(dA.pointer, value: a.attnIn.value.pointer, keep: sparseActivations ? a.attnIn.keep.pointer : nil,
                     rows: rows, width: d, nodeOffset: nodes.offset(layer: L, .attnIn))
        // the residual stream into the last block: d loss / d x is nonzero only at the answer rows before ln_1
        let dResidual = dResid.pointer
        dResidual.update(repeating: 0, count: rows * d)
        for (s, r) in answerRows.enumerated() { (dResidual + r * d).update(from: dR + s * d, count: d) }
        rmsnormBackward(dX: dResidual, dGain: nil, dOut: dA.pointer, residuals[L].pointer, rstd: a.rstd1.pointer, gain: P + w.ln1,
                        rows: rows, d: d, threads: threads)
        for l in stride(from: L - 1, through: 0, by: -1) { blockBackward(l, rows: rows, gradients: nil) }
        nodeMaskGradient = nodeGradientSums.map { Float($0) }
    }
}
