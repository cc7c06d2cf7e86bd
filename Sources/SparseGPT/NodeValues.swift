extension GPT {
    /// The values of the given nodes (global node order) at every row of the last forward, row-major
    /// (rows × nodes.count): after AbsTopK and before any ablation, as `accumulateNodeSums` reads
    /// them. For a node the ablation keeps this is also the value the rest of the model sees.
    public func nodeValues(of selected: [Int]) -> [Float] {
        let rows = batch * length, d = config.dModel
        var sites: [(base: UnsafePointer<Float>, width: Int, column: Int)] = []
        sites.reserveCapacity(selected.count)
        for node in selected {
            precondition(node >= 0 && node < nodes.count, "node \(node) is outside the layout's \(nodes.count) nodes")
            let location = nodes.locations.last { $0.offset <= node }!
            let column = node - location.offset
            guard let l = location.layer, let kind = location.kind else {
                sites.append((UnsafePointer(residuals[config.nLayer].pointer), d, column))
                continue
            }
            let a = blocks[l]
            switch kind {
            case .attnIn: sites.append((UnsafePointer(a.attnIn.value.pointer), d, column))
            case .q: sites.append((UnsafePointer(a.qkv.value.pointer), 3 * d, column))
            case .k: sites.append((UnsafePointer(a.qkv.value.pointer), 3 * d, d + column))
            case .v: sites.append((UnsafePointer(a.qkv.value.pointer), 3 * d, 2 * d + column))
            case .attnOut: sites.append((UnsafePointer(a.attnOut.value.pointer), d, column))
            case .mlpIn: sites.append((UnsafePointer(a.mlp.mlpIn.value.pointer), d, column))
            case .mlpNeuron: sites.append((UnsafePointer(a.mlp.mlpNeuron.value.pointer), 4 * d, column))
            case .mlpOut: sites.append((UnsafePointer(a.mlp.mlpOut.value.pointer), d, column))
            }
        }
        var out = [Float](repeating: 0, count: rows * selected.count)
        out.withUnsafeMutableBufferPointer { o in
            for (j, site) in sites.enumerated() {
                for r in 0..<rows { o[r * selected.count + j] = site.base[r * site.width + site.column] }
            }
        }
        return out
    }
}
