import Foundation

/// One named parameter tensor inside the flat parameter storage.
public struct ParameterTensor: Equatable, Sendable {
    public let name: String
    /// PyTorch layout: (out_features, in_features) row-major for matrices, [d] for gains.
    public let shape: [Int]
    public let offset: Int
    public var count: Int { shape.reduce(1, *) }
    /// The 2-D matrices are the sparsified ones; RMSNorm gains stay dense.
    public var isMatrix: Bool { shape.count == 2 }
    /// wte, wpe and lm_head use the embedding density and have no per-neuron floor.
    public var isEmbedding: Bool { name == "wte" || name == "wpe" || name == "lm_head" }
    /// The two c_proj matrices: a neuron is a column (input feature), otherwise a row.
    public var neuronsAreColumns: Bool { name.hasSuffix("c_proj") }
}

/// Names, shapes and offsets of all parameters, in the reference's order:
/// wte, wpe, ln_f, lm_head, then per layer ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj.
public struct ParameterLayout: Equatable, Sendable {
    public let tensors: [ParameterTensor]
    public let count: Int

    public init(_ c: ModelConfig) {
        let d = c.dModel
        var specs: [(String, [Int])] = [("wte", [c.vocab, d]), ("wpe", [c.context, d]), ("ln_f", [d]), ("lm_head", [c.vocab, d])]
        for l in 0..<c.nLayer {
            specs += [("h.\(l).ln_1", [d]), ("h.\(l).attn.c_attn", [3 * d, d]), ("h.\(l).attn.c_proj", [d, d]),
                      ("h.\(l).ln_2", [d]), ("h.\(l).mlp.c_fc", [4 * d, d]), ("h.\(l).mlp.c_proj", [d, 4 * d])]
        }
        var offset = 0
        var list: [ParameterTensor] = []
        for (name, shape) in specs {
            let t = ParameterTensor(name: name, shape: shape, offset: offset)
            list.append(t)
            offset += t.count
        }
        tensors = list
        count = offset
    }

    public func tensor(named name: String) -> ParameterTensor? { tensors.first { $0.name == name } }

    /// Offsets of the tensors one layer reads.
    struct Layer {
        let ln1, cAttn, attnProj, ln2, cFc, mlpProj: Int
    }

    func layer(_ l: Int) -> Layer {
        let base = 4 + 6 * l
        return Layer(ln1: tensors[base].offset, cAttn: tensors[base + 1].offset, attnProj: tensors[base + 2].offset,
                     ln2: tensors[base + 3].offset, cFc: tensors[base + 4].offset, mlpProj: tensors[base + 5].offset)
    }
    var wte: Int { tensors[0].offset }
    var wpe: Int { tensors[1].offset }
    var lnF: Int { tensors[2].offset }
    var lmHead: Int { tensors[3].offset }
}

/// The method's initialisation: gains 1; matrices normal(0, 0.02), the two c_proj normal(0, 0.02 / sqrt(2 n_layer)).
/// Deterministic in `seed`.
public func initialParameters(_ c: ModelConfig, seed: UInt64) -> [Float] {
    let layout = ParameterLayout(c)
    var values = [Float](repeating: 0, count: layout.count)
    var rng = RandomGenerator(seed: seed, stream: 0x1417)
    for t in layout.tensors {
        if !t.isMatrix {
            for i in 0..<t.count { values[t.offset + i] = 1 }
            continue
        }
        let std = t.neuronsAreColumns ? 0.02 / (2 * Double(c.nLayer)).squareRoot() : 0.02
        for i in 0..<t.count { values[t.offset + i] = Float(rng.normal() * std) }
    }
    return values
}
