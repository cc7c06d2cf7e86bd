import Foundation
import SparseGPT
import XCTest
@testable import Circuits

/// The reference's pruning golden file (`prune.safetensors`), read with a minimal safetensors parser.
struct GoldenPrune {
    let floats: [String: [Float]]
    let ints: [String: [Int32]]
    let shapes: [String: [Int]]
    let metadata: [String: String]

    static let url = Bundle.module.url(forResource: "prune", withExtension: "safetensors", subdirectory: "Fixtures")!

    static func load() throws -> GoldenPrune {
        let raw = try Data(contentsOf: url)
        let headerLength = Int(raw.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian)
        let header = try JSONSerialization.jsonObject(with: raw.subdata(in: 8..<(8 + headerLength))) as! [String: Any]
        var floats: [String: [Float]] = [:], ints: [String: [Int32]] = [:], shapes: [String: [Int]] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in header {
            if name == "__metadata__" { metadata = value as! [String: String]; continue }
            let entry = value as! [String: Any]
            let offsets = entry["data_offsets"] as! [Int]
            let bytes = raw.subdata(in: (8 + headerLength + offsets[0])..<(8 + headerLength + offsets[1]))
            shapes[name] = entry["shape"] as? [Int]
            switch entry["dtype"] as! String {
            case "F32": floats[name] = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            case "I32": ints[name] = bytes.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
            default: XCTFail("unexpected dtype in \(name)")
            }
        }
        return GoldenPrune(floats: floats, ints: ints, shapes: shapes, metadata: metadata)
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
