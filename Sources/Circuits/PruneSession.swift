import Foundation
import SparseGPT

/// A trained model loaded for pruning: one engine instance per worker thread, the matrices that
/// carry circuit edges, and its node means (computed once, reused for every task).
public final class PruneSession {
    public let modelPath: String
    public let checkpoint: Checkpoint
    /// The model, with one single-threaded engine per worker: every task-loss evaluation spreads
    /// its prompt chunks over them.
    public let model: PrunableGPT
    public let weights: CircuitWeights
    public private(set) var means: [Float]?

    /// Loads the checkpoint at `modelPath` with `workers` single-threaded engines of the model.
    public init(modelPath: String, workers: Int = 1) throws {
        self.modelPath = modelPath
        let loaded = try Checkpoint.load(from: modelPath)
        checkpoint = loaded
        // Small matrices gain little from threaded BLAS; the cores run prompt chunks instead.
        model = PrunableGPT(model: try loaded.makeModel(threads: 1),
                            replicas: try (1..<max(1, workers)).map { _ in try loaded.makeModel(threads: 1) })
        weights = try model.circuitWeights()
    }

    /// Runs the next evaluations on `workers` engines; the results do not depend on it.
    public func setWorkers(_ workers: Int) throws {
        guard workers != model.engines else { return }
        try model.useEngines(workers) { try checkpoint.makeModel(threads: 1) }
    }

    public var layout: NodeLayout { model.nodeLayout }
    public var config: ModelConfig { checkpoint.model }

    /// Node means over `windows` evenly spaced windows of `context` tokens of a held-out token
    /// stream, every position counted. With `cachePath`, means computed before for the same
    /// weights and tokens are read from there, and fresh ones are written there.
    @discardableResult
    public func computeMeans(heldOut tokens: [Int32], windows: Int = 256, cachePath: String? = nil) throws -> [Float] {
        let length = config.context
        let stream = try TokenWindows(tokens: tokens, length: length, vocab: config.vocab, name: "held-out tokens")
        let count = max(1, min(windows, tokens.count / (length + 1)))
        let withTargets = stream.evenlySpacedWindows(count: count)
        var sequences: [Int32] = []
        sequences.reserveCapacity(count * length)
        for w in 0..<count { sequences += withTargets[(w * (length + 1))..<(w * (length + 1) + length)] }

        let fingerprint = fingerprintHex(checkpoint.parameters, sequences)
        if let cachePath, let cached = try? NodeMeansFile.read(cachePath), cached.fingerprint == fingerprint,
           cached.means.count == layout.count {
            means = cached.means
            return cached.means
        }
        let fresh = try model.nodeMeans(sequences: sequences, count: count, length: length)
        if let cachePath {
            try NodeMeansFile(means: fresh, fingerprint: fingerprint, sequences: count, length: length).write(cachePath)
        }
        means = fresh
        return fresh
    }

    /// Uses node means computed elsewhere (global node order).
    public func setMeans(_ values: [Float]) throws {
        guard values.count == layout.count else {
            throw CircuitError.shapeMismatch("\(values.count) node means for a model of \(layout.count) nodes")
        }
        means = values
    }

    /// The frontier of one task (see `pruneFrontier`). Needs the means first.
    public func frontier(_ data: TaskData, settings: FrontierSettings = FrontierSettings(),
                         onStep: ((Float, MaskTrainingStep) -> Void)? = nil) throws -> Frontier {
        guard let means else { throw CircuitError.model("node means are not computed yet for \(modelPath)") }
        return try pruneFrontier(model: model, weights: weights, means: means, data: data, settings: settings, onStep: onStep)
    }

    /// FNV-1a over the bits of the weights and the mean tokens: identifies what the means were computed from.
    private func fingerprintHex(_ parameters: [Float], _ tokens: [Int32]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ word: UInt32) {
            for shift in stride(from: 0, to: 32, by: 8) {
                hash ^= UInt64((word >> UInt32(shift)) & 0xff)
                hash = hash &* 0x100_0000_01b3
            }
        }
        parameters.forEach { mix($0.bitPattern) }
        tokens.forEach { mix(UInt32(bitPattern: $0)) }
        return String(hash, radix: 16)
    }
}

/// Node means on disk: a safetensors file with F32 `means` (global node order) and metadata naming
/// what they were computed from.
public struct NodeMeansFile {
    public let means: [Float]
    public let fingerprint: String
    public let sequences: Int
    public let length: Int

    public init(means: [Float], fingerprint: String, sequences: Int, length: Int) {
        self.means = means
        self.fingerprint = fingerprint
        self.sequences = sequences
        self.length = length
    }

    public func write(_ path: String) throws {
        let file = SafeTensorsFile(tensors: ["means": SafeTensor(floats: means, shape: [means.count])],
                                   metadata: ["fingerprint": fingerprint, "sequences": String(sequences), "length": String(length)])
        try file.write(path)
    }

    public static func read(_ path: String) throws -> NodeMeansFile {
        let file = try SafeTensorsFile.read(path)
        let tensor = try file.tensor("means", file: path)
        guard tensor.dtype == .f32, tensor.shape.count == 1 else {
            throw CircuitError.model("\(path): means must be a 1-D F32 tensor")
        }
        return NodeMeansFile(means: tensor.floats, fingerprint: file.metadata["fingerprint"] ?? "",
                             sequences: Int(file.metadata["sequences"] ?? "") ?? 0, length: Int(file.metadata["length"] ?? "") ?? 0)
    }
}
