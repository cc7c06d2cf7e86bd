/// One place in the network where pruning masks act (SPEC 4): a named block of `size` nodes
/// starting at `offset` in the global node order.
public struct NodeLocation: Equatable, Codable, Sendable {
    public let name: String
    public let size: Int
    public let offset: Int

    public var range: Range<Int> { offset..<(offset + size) }
}

/// The global node order of the reference (`node_locs`): for each layer l the locations
/// `l.attn_in, l.q, l.k, l.v, l.attn_out, l.mlp_in, l.mlp_neuron (4·d), l.mlp_out`, then
/// `final_resid`. Every per-node array in this library (masks, means, τ) uses this order.
public struct NodeLayout: Equatable, Sendable {
    public static let layerLocations = ["attn_in", "q", "k", "v", "attn_out", "mlp_in", "mlp_neuron", "mlp_out"]

    public let dModel: Int
    public let nLayer: Int
    public let locations: [NodeLocation]

    public init(dModel: Int, nLayer: Int) {
        self.dModel = dModel
        self.nLayer = nLayer
        var locations: [NodeLocation] = []
        var offset = 0
        func add(_ name: String, _ size: Int) {
            locations.append(NodeLocation(name: name, size: size, offset: offset))
            offset += size
        }
        for layer in 0..<nLayer {
            for name in Self.layerLocations {
                add("\(layer).\(name)", name == "mlp_neuron" ? 4 * dModel : dModel)
            }
        }
        add("final_resid", dModel)
        self.locations = locations
    }

    /// Total number of nodes.
    public var count: Int { locations.last.map { $0.offset + $0.size } ?? 0 }

    public func location(_ name: String) -> NodeLocation? {
        locations.first { $0.name == name }
    }

    /// The location of `name` in `layer` (for example `layer: 1, "q"` → `1.q`).
    public func location(layer: Int, _ name: String) -> NodeLocation {
        guard let found = location("\(layer).\(name)") else {
            preconditionFailure("no node location \(layer).\(name) in a \(nLayer)-layer layout")
        }
        return found
    }

    public var finalResidual: NodeLocation { locations[locations.count - 1] }
}
