import SparseGPT

/// One edge of a circuit: a nonzero weight whose two end nodes are kept.
public struct CircuitEdge: Equatable, Codable, Sendable {
    /// Index within the source location (for `lm_head`: the final residual channel).
    public let from: Int
    /// Index within the target location (for `lm_head`: the candidate token id).
    public let to: Int
    public let weight: Float
}

/// The edges carried by one weight matrix, from one node location to another.
public struct EdgeGroup: Equatable, Codable, Sendable {
    /// The weight matrix, by its reference name (`h.0.attn.c_attn`, ..., `lm_head`).
    public let matrix: String
    /// Source location (`0.attn_in`, ...).
    public let source: String
    /// Target location (`0.q`, ..., or `logits` for `lm_head`).
    public let target: String
    public let edges: [CircuitEdge]
}

/// The edges of a circuit exactly as the method counts them: nonzero weights whose both ends are kept
/// nodes in `c_attn` (attention input → q/k/v), `attn.c_proj` (v → attention output), `c_fc`
/// (MLP input → neurons), `mlp.c_proj` (neurons → MLP output), and the rows of `lm_head` of the
/// distinct candidate tokens (final residual → candidate logits).
/// `keep` is the flat kept-node mask in global node order.
public func circuitEdges(weights: CircuitWeights, keep: [Bool], candidateTokens: [Int]) -> [EdgeGroup] {
    let layout = weights.layout
    precondition(keep.count == layout.count, "keep mask has \(keep.count) entries for \(layout.count) nodes")
    var groups: [EdgeGroup] = []

    /// Edges of `matrix` from the kept columns (of `source`) to the kept rows (of `target`);
    /// `rowOffset` selects a block of rows (q, k or v inside c_attn).
    func collect(_ matrix: WeightMatrix, rowOffset: Int = 0, source: NodeLocation, target: NodeLocation) {
        var edges: [CircuitEdge] = []
        matrix.values.withUnsafeBufferPointer { w in
            for r in 0..<target.size where keep[target.offset + r] {
                let row = (rowOffset + r) * matrix.columns
                for c in 0..<source.size where keep[source.offset + c] && w[row + c] != 0 {
                    edges.append(CircuitEdge(from: c, to: r, weight: w[row + c]))
                }
            }
        }
        groups.append(EdgeGroup(matrix: matrix.name, source: source.name, target: target.name, edges: edges))
    }

    let d = layout.dModel
    for (l, layer) in weights.layers.enumerated() {
        let attnIn = layout.location(layer: l, "attn_in")
        for (block, name) in ["q", "k", "v"].enumerated() {
            collect(layer.attention, rowOffset: block * d, source: attnIn, target: layout.location(layer: l, name))
        }
        collect(layer.attentionProjection, source: layout.location(layer: l, "v"), target: layout.location(layer: l, "attn_out"))
        collect(layer.mlpIn, source: layout.location(layer: l, "mlp_in"), target: layout.location(layer: l, "mlp_neuron"))
        collect(layer.mlpOut, source: layout.location(layer: l, "mlp_neuron"), target: layout.location(layer: l, "mlp_out"))
    }

    let residual = layout.finalResidual
    var logitEdges: [CircuitEdge] = []
    for token in Set(candidateTokens).sorted() {
        for c in 0..<residual.size where keep[residual.offset + c] {
            let w = weights.lmHead[token, c]
            if w != 0 { logitEdges.append(CircuitEdge(from: c, to: token, weight: w)) }
        }
    }
    groups.append(EdgeGroup(matrix: weights.lmHead.name, source: residual.name, target: "logits", edges: logitEdges))
    return groups
}

/// The number of circuit edges (see `circuitEdges`).
public func countEdges(weights: CircuitWeights, keep: [Bool], candidateTokens: [Int]) -> Int {
    circuitEdges(weights: weights, keep: keep, candidateTokens: candidateTokens).reduce(0) { $0 + $1.edges.count }
}
