import Foundation

/// The paper's task loss over prompts of a minimal-pair task.
public struct TaskLossResult {
    /// Mean over prompts of the cross-entropy of the correct candidate under a softmax over the two candidate logits.
    public var loss: Float
    /// d loss / d logits (batch x length x vocab): nonzero only at the two candidates of each prompt's last position.
    public var dLogits: [Float]
}

extension GPT {
    /// Task loss of the last forward: row p is a prompt of `lengths[p]` tokens (right-padded), and
    /// `candidates[p]` = (correct, wrong) token ids, read at position lengths[p] - 1.
    public func taskLoss(lengths: [Int32], candidates: [(correct: Int32, wrong: Int32)]) throws -> TaskLossResult {
        guard lengths.count == batch, candidates.count == batch else {
            throw SparseGPTError.badInput("task loss needs one length and one candidate pair per prompt (\(batch) prompts)")
        }
        let vocab = config.vocab
        var dLogits = [Float](repeating: 0, count: batch * length * vocab)
        var total: Double = 0
        let inv = 1 / Float(batch)
        for p in 0..<batch {
            let len = Int(lengths[p])
            guard len >= 1, len <= length else { throw SparseGPTError.badInput("prompt \(p) has length \(len), outside 1...\(length)") }
            let (good, bad) = (Int(candidates[p].correct), Int(candidates[p].wrong))
            guard good >= 0, good < vocab, bad >= 0, bad < vocab else {
                throw SparseGPTError.badInput("prompt \(p) has candidate tokens (\(good), \(bad)) outside the vocabulary")
            }
            let row = (p * length + len - 1) * vocab
            let a = logits[row + good], b = logits[row + bad]
            let m = max(a, b)
            let ea = expf(a - m), eb = expf(b - m)
            let lse = m + logf(ea + eb)
            total += Double(lse - a)
            let sa = ea / (ea + eb), sb = eb / (ea + eb)
            dLogits[row + good] += (sa - 1) * inv
            dLogits[row + bad] += sb * inv
        }
        return TaskLossResult(loss: Float(total / Double(batch)), dLogits: dLogits)
    }
}
