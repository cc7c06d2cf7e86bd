import Foundation
import SparseGPT

/// The engine's GPT as an `AblatableModel`: frozen weights, mean-ablated nodes, task loss and
/// d loss / d mask without weight gradients.
///
/// Prompts are run in chunks of at most `chunkPrompts`, sorted by length, each chunk packed without
/// padding through the engine's task path (`GPT.answerTaskLoss`: only what the loss at each prompt's
/// last position depends on); the loss and mask gradient are the prompt-weighted means over chunks
/// (identical to one big batch).
///
/// With `replicas` (more copies of the same model, one per extra thread), the chunks of one
/// evaluation run in parallel, longest first, and their results are summed in chunk order: the
/// loss and gradient do not depend on the number of copies, and every core stays busy however
/// many λ runs a frontier has. Between evaluations the number of engines in use may change
/// (`useEngines`), which changes only the speed.
public final class PrunableGPT: AblatableModel {
    public let model: GPT
    public private(set) var replicas: [GPT]
    /// Engines that run an evaluation's chunks: the model and the first `engines - 1` replicas.
    public private(set) var engines: Int
    public var chunkPrompts: Int

    public init(model: GPT, replicas: [GPT] = [], chunkPrompts: Int = 16) {
        self.model = model
        self.replicas = replicas
        for engine in [model] + replicas { _ = Self.frozen(engine) }
        engines = 1 + replicas.count
        self.chunkPrompts = max(1, chunkPrompts)
    }

    /// Runs the next evaluations on `count` engines, making the replicas it lacks with `makeReplica`
    /// (an engine of the same model). Call it between evaluations.
    public func useEngines(_ count: Int, makeReplica: () throws -> GPT) throws {
        let wanted = max(1, count)
        while replicas.count < wanted - 1 { replicas.append(Self.frozen(try makeReplica())) }
        engines = wanted
    }

    /// Pruning never changes the weights, so no engine compares them again before each forward.
    private static func frozen(_ engine: GPT) -> GPT {
        engine.weightsAreFrozen = true
        return engine
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
        try check(pairs, masks: masks, means: means)
        let ablation = NodeAblation(mask: masks, mean: means)
        let chunks = promptChunks(pairs)
        let results = try runChunks(chunks) { rows, engine in
            try engine.answerTaskLoss(tokens: packedPrompts(pairs, rows), lengths: rows.map { pairs.lengths[$0] },
                                      candidates: candidatePairs(pairs, rows), ablation: ablation, maskGradient: maskGradient)
        }
        var loss: Double = 0
        var gradient = maskGradient ? [Double](repeating: 0, count: n) : []
        for (rows, chunk) in zip(chunks, results) {
            let weight = Double(rows.count) / Double(pairs.count)
            loss += Double(chunk.loss) * weight
            if let chunkGradient = chunk.maskGradient {
                for i in 0..<n { gradient[i] += Double(chunkGradient[i]) * weight }
            }
        }
        return (Float(loss), maskGradient ? gradient.map(Float.init) : nil)
    }

    /// Per prompt: logit(correct) − logit(wrong) at its last position, by the same task path as the
    /// loss (the last block only at the answer rows, two logits), so scoring a circuit for calibration
    /// costs what its task loss costs.
    public func logitMargins(_ pairs: TaskPairs, masks: [Float], means: [Float]) throws -> [Float] {
        try check(pairs, masks: masks, means: means)
        let ablation = NodeAblation(mask: masks, mean: means)
        let chunks = promptChunks(pairs)
        let results = try runChunks(chunks) { rows, engine -> [Float] in
            try engine.answerLogits(tokens: packedPrompts(pairs, rows), lengths: rows.map { pairs.lengths[$0] },
                                    candidates: candidatePairs(pairs, rows), ablation: ablation).map { $0.correct - $0.wrong }
        }
        var margins = [Float](repeating: 0, count: pairs.count)
        for (rows, chunk) in zip(chunks, results) {
            for (r, margin) in zip(rows, chunk) { margins[r] = margin }
        }
        return margins
    }

    private func check(_ pairs: TaskPairs, masks: [Float], means: [Float]) throws {
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
    }

    /// The prompts `rows` one after another without padding, as the task path takes them.
    private func packedPrompts(_ pairs: TaskPairs, _ rows: [Int]) -> [Int32] {
        var tokens: [Int32] = []
        tokens.reserveCapacity(rows.reduce(0) { $0 + Int(pairs.lengths[$1]) })
        for r in rows { tokens += pairs.prompts[(r * pairs.width)..<(r * pairs.width + Int(pairs.lengths[r]))] }
        return tokens
    }

    private func candidatePairs(_ pairs: TaskPairs, _ rows: [Int]) -> [(correct: Int32, wrong: Int32)] {
        rows.map { (pairs.candidates[2 * $0], pairs.candidates[2 * $0 + 1]) }
    }

    /// Prompt indices sorted by length, in chunks of at most `chunkPrompts`.
    private func promptChunks(_ pairs: TaskPairs) -> [[Int]] {
        let order = pairs.lengths.indices.sorted { (pairs.lengths[$0], $0) < (pairs.lengths[$1], $1) }
        return stride(from: 0, to: order.count, by: chunkPrompts).map { Array(order[$0..<min($0 + chunkPrompts, order.count)]) }
    }

    /// `evaluate` on every chunk, spread over the engines (longest chunks first, each taken by the
    /// next free engine); results in chunk order.
    private func runChunks<T>(_ chunks: [[Int]], _ evaluate: ([Int], GPT) throws -> T) throws -> [T] {
        var results = [Result<T, Error>?](repeating: nil, count: chunks.count)
        let engines = Array(([model] + replicas).prefix(self.engines))
        if engines.count == 1 || chunks.count == 1 {
            for (i, rows) in chunks.enumerated() { results[i] = Result { try evaluate(rows, model) } }
        } else {
            let lock = NSLock()
            var next = chunks.count
            withoutActuallyEscaping(evaluate) { evaluate in
                DispatchQueue.concurrentPerform(iterations: min(engines.count, chunks.count)) { worker in
                    while true {
                        lock.lock()
                        next -= 1
                        let i = next
                        lock.unlock()
                        guard i >= 0 else { return }
                        let outcome = Result { try evaluate(chunks[i], engines[worker]) }
                        lock.lock()
                        results[i] = outcome
                        lock.unlock()
                    }
                }
            }
        }
        return try results.map { try $0!.get() }
    }

    private func checkTokens(_ tokens: [Int32], what: String) throws {
        if let bad = tokens.firstIndex(where: { $0 < 0 || Int($0) >= model.config.vocab }) {
            throw CircuitError.model("\(what): token \(tokens[bad]) at index \(bad) is outside the vocabulary 0..<\(model.config.vocab)")
        }
    }
}
