/// The node locations of the method (where pruning masks act), in the reference's global node order:
/// for each layer l: l.attn_in (d), l.q (d), l.k (d), l.v (d), l.attn_out (d), l.mlp_in (d),
/// l.mlp_neuron (4d), l.mlp_out (d); then final_resid (d), the residual before ln_f.
public enum NodeKind: String, CaseIterable, Sendable {
    case attnIn = "attn_in", q, k, v, attnOut = "attn_out", mlpIn = "mlp_in", mlpNeuron = "mlp_neuron", mlpOut = "mlp_out"
}

public struct NodeLocation: Equatable, Sendable {
    /// "l.kind" or "final_resid", as in the reference's `node_locs`.
    public let name: String
    /// nil for final_resid.
    public let layer: Int?
    public let kind: NodeKind?
    public let size: Int
    /// Offset of the location's first node in the global order.
    public let offset: Int
}

public struct NodeLayout: Equatable, Sendable {
    public let locations: [NodeLocation]
    /// Total number of nodes.
    public let count: Int

    public init(_ c: ModelConfig) {
        var list: [NodeLocation] = []
        var offset = 0
        for l in 0..<c.nLayer {
            for kind in NodeKind.allCases {
                let size = kind == .mlpNeuron ? 4 * c.dModel : c.dModel
                list.append(NodeLocation(name: "\(l).\(kind.rawValue)", layer: l, kind: kind, size: size, offset: offset))
                offset += size
            }
        }
        list.append(NodeLocation(name: "final_resid", layer: nil, kind: nil, size: c.dModel, offset: offset))
        offset += c.dModel
        locations = list
        count = offset
    }

    /// Offset of location `kind` of layer `layer` in the global order.
    public func offset(layer: Int, _ kind: NodeKind) -> Int {
        locations[layer * NodeKind.allCases.count + NodeKind.allCases.firstIndex(of: kind)!].offset
    }

    public var finalResidOffset: Int { locations[locations.count - 1].offset }

    public func location(named name: String) -> NodeLocation? { locations.first { $0.name == name } }
}

/// Mean ablation of nodes: at each location, after AbsTopK, value = mask * x + (1 - mask) * mean.
/// Both arrays are in the global node order (`NodeLayout.count` entries); mask entries are 0 or 1
/// (any value works: the backward gives d loss / d mask).
public struct NodeAblation: Sendable {
    public var mask: [Float]
    public var mean: [Float]
    public init(mask: [Float], mean: [Float]) {
        self.mask = mask
        self.mean = mean
    }
}
