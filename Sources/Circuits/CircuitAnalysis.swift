import Foundation
import SparseGPT

/// How much of the data a circuit's per-node analysis reads: it runs once per pruned task, so
/// its cost stays a small fraction of the pruning's.
public struct CircuitAnalysisSettings: Sendable {
    /// Evenly spaced held-out windows whose positions the top-activating snippets are taken from.
    public var heldOutWindows = 64
    /// Snippets kept per node with the highest activations, and with the lowest.
    public var topSnippets = 4
    public var bottomSnippets = 2
    /// Tokens shown before and after a snippet's highlighted token.
    public var tokensBefore = 24
    public var tokensAfter = 6
    /// Test pairs the ablation effects and the A/B means are measured on (the first ones).
    public var pairs = 128
    /// Pairs written out as text for a reader.
    public var shownPairs = 6

    public init() {}
}

/// What a reader wants to know about each node of a circuit, measured once when the circuit is
/// found: its ablation effect (the task loss with only that node removed from the circuit), its
/// mean at the answer position on prompts A and on prompts B inside the circuit, and the held-out
/// corpus positions where it is most and least active in the full model.
public struct CircuitAnalysis: Codable, Equatable, Sendable {
    public struct Snippet: Codable, Equatable, Sendable {
        /// The snippet's tokens as text; `position` is the index of the token the value was read at.
        public let tokens: [String]
        /// The node's value at every token of the snippet.
        public let activations: [Float]
        public let position: Int
        public let value: Float
    }

    public struct Node: Codable, Equatable, Sendable {
        public let location: String
        public let index: Int
        /// Task loss of the circuit with only this node mean-ablated.
        public let ablatedLoss: Float
        /// Mean value at the answer position of prompts A and of prompts B, the circuit alone kept.
        public let meanA: Float
        public let meanB: Float
        public let top: [Snippet]
        public let bottom: [Snippet]

        enum CodingKeys: String, CodingKey {
            case location, index, top, bottom
            case ablatedLoss = "ablated_loss", meanA = "mean_a", meanB = "mean_b"
        }
    }

    /// One task pair as text: both prompts and each one's correct answer (the other's wrong one),
    /// with the answers' token ids.
    public struct Pair: Codable, Equatable, Sendable {
        public let promptA: [String]
        public let promptB: [String]
        public let answerA: String
        public let answerB: String
        public let answerTokenA: Int
        public let answerTokenB: Int

        enum CodingKeys: String, CodingKey {
            case promptA = "prompt_a", promptB = "prompt_b", answerA = "answer_a", answerB = "answer_b"
            case answerTokenA = "answer_token_a", answerTokenB = "answer_token_b"
        }
    }

    public let task: String
    public let target: Float
    public let dModel: Int
    public let nLayer: Int
    public let dHead: Int
    /// Task loss of the whole circuit on the pairs the ablation effects use.
    public let circuitLoss: Float
    public let pairsMeasured: Int
    public let heldOutWindows: Int
    public let windowLength: Int
    public let seconds: Double
    public let nodes: [Node]
    public let pairs: [Pair]

    enum CodingKeys: String, CodingKey {
        case task, target, seconds, nodes, pairs
        case dModel = "d_model", nLayer = "n_layer", dHead = "d_head", circuitLoss = "circuit_loss"
        case pairsMeasured = "pairs_measured", heldOutWindows = "held_out_windows", windowLength = "window_length"
    }

    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(self)
    }

    /// Analyses the circuit `circuit` (a reachable document of `session`'s model) on the test pairs
    /// of `data` and on `heldOut` corpus tokens. `text` turns a token id into its text.
    public static func analyse(circuit: CircuitDocument, session: PruneSession, data: TaskData, heldOut: [Int32],
                               settings: CircuitAnalysisSettings = CircuitAnalysisSettings(),
                               text: (Int) -> String) throws -> CircuitAnalysis {
        let clock = Date()
        guard let means = session.means else { throw CircuitError.model("node means are not computed yet for \(session.modelPath)") }
        let layout = session.layout, config = session.config
        var nodes: [(location: NodeLocation, index: Int)] = []
        for kept in circuit.locations ?? [] {
            guard let location = layout.location(named: kept.name) else {
                throw CircuitError.shapeMismatch("the circuit of \(circuit.task) names location \(kept.name), which the model lacks")
            }
            for node in kept.kept {
                guard node.index >= 0, node.index < location.size else {
                    throw CircuitError.shapeMismatch("the circuit of \(circuit.task) keeps node \(node.index) of \(kept.name), which has \(location.size)")
                }
                nodes.append((location, node.index))
            }
        }
        let global = nodes.map { $0.location.offset + $0.index }
        var keep = [Float](repeating: 0, count: layout.count)
        for g in global { keep[g] = 1 }

        let pairs = data.test.selecting(pairs: Array(0..<min(settings.pairs, data.test.pairCount)))
        let circuitLoss = try session.model.taskLoss(pairs, masks: keep, means: means, maskGradient: false).loss
        var ablated: [Float] = []
        ablated.reserveCapacity(global.count)
        for g in global {
            keep[g] = 0
            ablated.append(try session.model.taskLoss(pairs, masks: keep, means: means, maskGradient: false).loss)
            keep[g] = 1
        }

        // Values at the answer position (the last prompt token), inside the circuit.
        let gpt = session.model.model
        try gpt.forward(tokens: pairs.prompts, batch: pairs.count, length: pairs.width,
                        ablation: NodeAblation(mask: keep, mean: means))
        let answerValues = gpt.nodeValues(of: global)
        var sumA = [Double](repeating: 0, count: global.count), sumB = sumA
        for p in 0..<pairs.count {
            let row = p * pairs.width + Int(pairs.lengths[p]) - 1
            for j in global.indices {
                let v = Double(answerValues[row * global.count + j])
                if p % 2 == 0 { sumA[j] += v } else { sumB[j] += v }
            }
        }
        let pairCount = Double(pairs.pairCount)

        let (top, bottom, windows) = try snippets(nodes: global, gpt: gpt, heldOut: heldOut, settings: settings, text: text)

        let analysed = nodes.indices.map { j in
            Node(location: nodes[j].location.name, index: nodes[j].index, ablatedLoss: ablated[j],
                 meanA: Float(sumA[j] / pairCount), meanB: Float(sumB[j] / pairCount), top: top[j], bottom: bottom[j])
        }
        let shown = (0..<min(settings.shownPairs, data.test.pairCount)).map { i -> Pair in
            func prompt(_ row: Int) -> [String] {
                let start = row * data.test.width
                return data.test.prompts[start..<(start + Int(data.test.lengths[row]))].map { text(Int($0)) }
            }
            let a = Int(data.test.candidates[4 * i]), b = Int(data.test.candidates[4 * i + 2])
            return Pair(promptA: prompt(2 * i), promptB: prompt(2 * i + 1), answerA: text(a), answerB: text(b),
                        answerTokenA: a, answerTokenB: b)
        }
        return CircuitAnalysis(task: circuit.task, target: circuit.target, dModel: config.dModel, nLayer: config.nLayer,
                               dHead: config.dHead, circuitLoss: circuitLoss, pairsMeasured: pairs.pairCount,
                               heldOutWindows: windows, windowLength: config.context,
                               seconds: Date().timeIntervalSince(clock), nodes: analysed, pairs: shown)
    }

    /// Per node, the held-out positions of highest and of lowest value in the unablated model, at
    /// most one per window so that the snippets show different contexts.
    private static func snippets(nodes: [Int], gpt: GPT, heldOut: [Int32], settings: CircuitAnalysisSettings,
                                 text: (Int) -> String) throws -> (top: [[Snippet]], bottom: [[Snippet]], windows: Int) {
        let length = gpt.config.context
        let stream = try TokenWindows(tokens: heldOut, length: length, vocab: gpt.config.vocab, name: "held-out tokens")
        let count = max(1, min(settings.heldOutWindows, heldOut.count / (length + 1)))
        let withTargets = stream.evenlySpacedWindows(count: count)
        var windows: [Int32] = []
        windows.reserveCapacity(count * length)
        for w in 0..<count { windows += withTargets[(w * (length + 1))..<(w * (length + 1) + length)] }

        struct Candidate { var value: Float; var window: Int; var position: Int; var activations: [Float] }
        var top = [[Candidate]](repeating: [], count: nodes.count), bottom = top
        func insert(_ c: Candidate, into list: inout [Candidate], limit: Int, higher: Bool) {
            guard limit > 0 else { return }
            let better = { (a: Candidate, b: Candidate) in higher ? a.value > b.value : a.value < b.value }
            if list.count == limit, let last = list.last, !better(c, last) { return }
            list.insert(c, at: list.firstIndex { better(c, $0) } ?? list.count)
            if list.count > limit { list.removeLast() }
        }
        let batch = 32
        var start = 0
        while start < count && !nodes.isEmpty {
            let n = min(batch, count - start)
            try gpt.forward(tokens: Array(windows[(start * length)..<((start + n) * length)]), batch: n, length: length)
            let values = gpt.nodeValues(of: nodes)
            for w in 0..<n {
                for j in nodes.indices {
                    var hi = 0, lo = 0
                    for t in 0..<length {
                        let v = values[(w * length + t) * nodes.count + j]
                        if v > values[(w * length + hi) * nodes.count + j] { hi = t }
                        if v < values[(w * length + lo) * nodes.count + j] { lo = t }
                    }
                    for (position, isTop) in [(hi, true), (lo, false)] {
                        let from = max(0, position - settings.tokensBefore), to = min(length, position + settings.tokensAfter + 1)
                        let candidate = Candidate(value: values[(w * length + position) * nodes.count + j], window: start + w,
                                                  position: position,
                                                  activations: (from..<to).map { values[(w * length + $0) * nodes.count + j] })
                        if isTop { insert(candidate, into: &top[j], limit: settings.topSnippets, higher: true) }
                        else { insert(candidate, into: &bottom[j], limit: settings.bottomSnippets, higher: false) }
                    }
                }
            }
            start += n
        }
        func snippet(_ c: Candidate) -> Snippet {
            let from = max(0, c.position - settings.tokensBefore)
            let tokens = (from..<(from + c.activations.count)).map { text(Int(windows[c.window * length + $0])) }
            return Snippet(tokens: tokens, activations: c.activations, position: c.position - from, value: c.value)
        }
        return (top.map { $0.map(snippet) }, bottom.map { $0.map(snippet) }, count)
    }
}
