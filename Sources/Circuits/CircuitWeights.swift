import SparseGPT

/// A row-major (out_features × in_features) weight matrix, PyTorch layout.
public struct WeightMatrix: Sendable {
    public let name: String
    public let rows: Int
    public let columns: Int
    public let values: [Float]

    public init(name: String, rows: Int, columns: Int, values: [Float]) throws {
        guard values.count == rows * columns else {
            throw CircuitError.shapeMismatch("\(name): \(values.count) values for a \(rows)×\(columns) matrix")
        }
        self.name = name
        self.rows = rows
        self.columns = columns
        self.values = values
    }

    public subscript(row: Int, column: Int) -> Float { values[row * columns + column] }
}

/// The weights that carry circuit edges, per layer and for `lm_head`.
public struct CircuitWeights: Sendable {
    public struct Layer: Sendable {
        /// `h.l.attn.c_attn` (3·d × d): rows q, k, v; columns attention input.
        public let attention: WeightMatrix
        /// `h.l.attn.c_proj` (d × d): rows attention output; columns v channels.
        public let attentionProjection: WeightMatrix
        /// `h.l.mlp.c_fc` (4·d × d): rows neurons; columns MLP input.
        public let mlpIn: WeightMatrix
        /// `h.l.mlp.c_proj` (d × 4·d): rows MLP output; columns neurons.
        public let mlpOut: WeightMatrix
    }

    public let layout: NodeLayout
    public let layers: [Layer]
    /// `lm_head` (vocab × d): rows tokens; columns final residual channels.
    public let lmHead: WeightMatrix

    /// Takes the matrices by their reference names (`h.0.attn.c_attn`, ..., `lm_head`) from `lookup`,
    /// checking every shape against the layout.
    public init(layout: NodeLayout, lookup: (String) throws -> WeightMatrix) throws {
        let d = layout.dModel
        func fetch(_ name: String, _ rows: Int?, _ columns: Int) throws -> WeightMatrix {
            let matrix = try lookup(name)
            guard (rows == nil || matrix.rows == rows!) && matrix.columns == columns else {
                throw CircuitError.shapeMismatch("\(name) is \(matrix.rows)×\(matrix.columns), expected \(rows.map(String.init) ?? "vocab")×\(columns)")
            }
            return matrix
        }
        layers = try (0..<layout.nLayer).map { l in
            Layer(attention: try fetch("h.\(l).attn.c_attn", 3 * d, d),
                  attentionProjection: try fetch("h.\(l).attn.c_proj", d, d),
                  mlpIn: try fetch("h.\(l).mlp.c_fc", 4 * d, d),
                  mlpOut: try fetch("h.\(l).mlp.c_proj", d, 4 * d))
        }
        lmHead = try fetch("lm_head", nil, d)
        self.layout = layout
    }
}

public enum CircuitError: Error, CustomStringConvertible, Equatable {
    case shapeMismatch(String)
    case invalidPairs(String)
    case invalidSettings(String)
    case model(String)

    public var description: String {
        switch self {
        case .shapeMismatch(let s): return "shape mismatch: \(s)"
        case .invalidPairs(let s): return "invalid task pairs: \(s)"
        case .invalidSettings(let s): return "invalid pruning settings: \(s)"
        case .model(let s): return "model: \(s)"
        }
    }
}
