import Foundation
import SparseGPT

/// The engine's GPT as an `AblatableModel`: frozen weights, mean-ablated nodes, task loss and
/// d loss / d mask without weight gradients.
///
/// Prompts are run in chunks of at most `chunkPrompts`, sorted by length, each chunk packed without
/// padding through the engine's task path (`GPT.answerTaskLoss`: only what the loss at each prompt's
/// last position depends on); the loss and mask gradient are the prompt-weighted means over chunks
/// (identical to one big batch).
public final class PrunableGPT: AblatableModel {
    public let model: GPT
    public var chunkPrompts: Int

    public init(model: GPT, chunkPrompts: Int = 64) {
        self.model = model
        self.chunkPrompts = max(1, chunkPrompts)
    }

    public var nodeLayout: NodeLayout { model.nodes }

    /// The matrices that carry circuit edges, read from the model's parameters.
    public func circuitWeights() throws -> CircuitWeights {
        try CircuitWeights(layout: model.nodes) { name in
            guard let tensor = model.layout.tensor(named: name), tensor.shape.count == 2, let values = model.tensor(name) else {
                throw CircuitError.model("the model has no matrix \(name)")
            }
            return try WeightMatrix(name: name, rows: tensor.shape[0], columns: tensor.shape[1], values: values)
        }
    }

    /// Per-node means over every position of `sequences` (count × length tokens), unablated model:
    /// the values a pruned node takes. Compute them once per model and reuse them for every task.
    public func nodeMeans(sequences: [Int32], count: Int, length: Int) throws -> [Float] {
        try checkTokens(sequences, what: "mean sequences")
        guard length <= model.config.context else {
            throw CircuitError.model("mean sequences of length \(length) exceed the model context \(model.config.context)")
        }
        return try model.nodeMeans(sequences: sequences, count: count, length: length)
    }

    public func taskLoss(_ pairs: TaskPairs, masks: [Float], means: [Float], maskGradient: Bool) throws -> (loss: Float, maskGradient: [Float]?) {
        let n = model.nodes.count
        guard masks.count == n, means.count == n else {
            throw CircuitError.shapeMismatch("\(masks.count) masks and \(means.count) means for \(n) nodes")
        }
        guard pairs.maxToken < model.config.vocab else {
            throw CircuitError.invalidPairs("token id \(pairs.maxToken) is outside the model's vocabulary 0..<\(model.config.vocab)")
        }
        guard let longest = pairs.lengths.max(), Int(longest) <= model.config.context else {
            throw CircuitError.invalidPairs("a prompt is longer than the model context \(model.config.context)")
        }
        let ablation = NodeAblation(mask: masks, mean: means)
        let order = pairs.lengths.indices.sorted { (pairs.lengths[$0], $0) < (pairs.lengths[$1], $1) }
        var loss: Double = 0
        var gradient = maskGradient ? [Double](repeating: 0, count: n) : []
        var start = 0
        while start < order.count {
            let rows = Array(order[start..<min(start + chunkPrompts, order.count)])
            start += rows.count
            var tokens: [Int32] = []
            tokens.reserveCapacity(rows.reduce(0) { $0 + Int(pairs.lengths[$1]) })
            for r in rows { tokens += pairs.prompts[(r * pairs.width)..<(r * pairs.width + Int(pairs.lengths[r]))] }
            let result = try model.answerTaskLoss(tokens: tokens, lengths: rows.map { pairs.lengths[$0] },
                                                  candidates: rows.map { (pairs.candidates[2 * $0], pairs.candidates[2 * $0 + 1]) },
                                                  ablation: ablation, maskGradient: maskGradient)
            let weight = Double(rows.count) / Double(pairs.count)
            loss += Double(result.loss) * weight
            if let chunkGradient = result.maskGradient {
                for i in 0..<n { gradient[i] += Double(chunkGradient[i]) * weight }
            }
        }
        return (Float(loss), maskGradient ? gradient.map(Float.init) : nil)
    }

    private func checkTokens(_ tokens: [Int32], what: String) throws {
        if let bad = tokens.firstIndex(where: { $0 < 0 || Int($0) >= model.config.vocab }) {
            throw CircuitError.model("\(what): token \(tokens[bad]) at index \(bad) is outside the vocabulary 0..<\(model.config.vocab)")
        }
    }
}
