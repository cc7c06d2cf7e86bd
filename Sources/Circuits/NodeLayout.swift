import SparseGPT

/// Circuits uses the engine's global node order (`SparseGPT.NodeLayout`); these helpers read it
/// by location name.
extension NodeLayout {
    /// A layout for a model of this width and depth (the node order depends on nothing else).
    public init(dModel: Int, nLayer: Int) {
        self.init(ModelConfig(vocab: 2, context: 1, dModel: dModel, nLayer: nLayer, dHead: 1))
    }

    public var dModel: Int { finalResidual.size }
    public var nLayer: Int { (locations.count - 1) / NodeKind.allCases.count }

    /// The location `layer.name` (for example `layer: 1, "q"` → `1.q`).
    public func location(layer: Int, _ name: String) -> NodeLocation {
        guard let found = location(named: "\(layer).\(name)") else {
            preconditionFailure("no node location \(layer).\(name) in a \(nLayer)-layer layout")
        }
        return found
    }

    public var finalResidual: NodeLocation { locations[locations.count - 1] }
}

extension NodeLocation {
    /// The location's nodes in the global order.
    public var range: Range<Int> { offset..<(offset + size) }
}
