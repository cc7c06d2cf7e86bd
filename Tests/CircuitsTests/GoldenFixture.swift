import Foundation
import SparseGPT
import XCTest
@testable import Circuits

/// The reference's pruning golden file (`prune.safetensors`).
struct GoldenPrune {
    let floats: [String: [Float]]
    let ints: [String: [Int32]]
    let shapes: [String: [Int]]
    let metadata: [String: String]

    static let url = Bundle.module.url(forResource: "prune", withExtension: "safetensors", subdirectory: "Fixtures")!

    static func load() throws -> GoldenPrune {
        let file = try SafeTensorsFile.read(url.path)
        return GoldenPrune(floats: file.tensors.filter { $0.value.dtype == .f32 }.mapValues(\.floats),
                           ints: file.tensors.filter { $0.value.dtype == .i32 }.mapValues(\.ints),
                           shapes: file.tensors.mapValues(\.shape), metadata: file.metadata)
    }

    func matrix(_ name: String) throws -> WeightMatrix {
        let shape = shapes["model." + name]!
        return try WeightMatrix(name: name, rows: shape[0], columns: shape[1], values: floats["model." + name]!)
    }

    var layout: NodeLayout { NodeLayout(dModel: 32, nLayer: 2) }

    func weights() throws -> CircuitWeights { try CircuitWeights(layout: layout, lookup: matrix) }

    /// The flat `circuit.<location>` masks in global node order.
    func circuitKeep() -> [Bool] {
        layout.locations.flatMap { ints["circuit." + $0.name]!.map { $0 != 0 } }
    }

    var pairs: TaskPairs {
        get throws {
            try TaskPairs(width: shapes["prompts"]![1], prompts: ints["prompts"]!, lengths: ints["lengths"]!,
                          candidates: ints["cand"]!)
        }
    }

    /// The (k, loss) trace the reference's bisection evaluated.
    var trace: [(k: Int, loss: Float)] {
        let circuit = try! JSONSerialization.jsonObject(with: Data(metadata["circuit"]!.utf8)) as! [String: Any]
        return (circuit["trace"] as! [[Double]]).map { (Int($0[0]), Float($0[1])) }
    }
}
