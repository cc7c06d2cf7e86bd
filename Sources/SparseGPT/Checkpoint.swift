import Foundation

/// A model and its training state in a safetensors file: F32 tensors `<param>` (PyTorch layout),
/// `adam.m.<param>` and `adam.v.<param>`, and `__metadata__` strings `format`, `config` (flat JSON of
/// the model and training configs, the reference's keys), `step` (optimizer steps done) and `rng`
/// (JSON: the data generator and its seed; batches depend only on (seed, step)), and `data_checksum`
/// (FNV-1a 64 of the tensor data in name order), checked on load so a flipped bit is an error.
/// Python's safetensors, torch and the reference's `load_safetensors` all read it.
public struct Checkpoint {
    public static let format = "circuitry-sparse-gpt-1"

    public var model: ModelConfig
    public var training: TrainingConfig
    public var step: Int
    public var parameters: [Float]
    public var adamM: [Float]
    public var adamV: [Float]

    public init(model: ModelConfig, training: TrainingConfig, step: Int, parameters: [Float], adamM: [Float], adamV: [Float]) {
        self.model = model; self.training = training; self.step = step
        self.parameters = parameters; self.adamM = adamM; self.adamV = adamV
    }

    /// The state of a trainer (its model's weights, its moments and step).
    public init(trainer: Trainer) {
        self.init(model: trainer.model.config, training: trainer.config, step: trainer.step,
                  parameters: trainer.model.parameters.array, adamM: trainer.adamM.array, adamV: trainer.adamV.array)
    }

    public func save(to path: String) throws {
        let layout = ParameterLayout(model)
        var file = SafeTensorsFile()
        for t in layout.tensors {
            let range = t.offset..<(t.offset + t.count)
            file.tensors[t.name] = SafeTensor(floats: Array(parameters[range]), shape: t.shape)
            file.tensors["adam.m." + t.name] = SafeTensor(floats: Array(adamM[range]), shape: t.shape)
            file.tensors["adam.v." + t.name] = SafeTensor(floats: Array(adamV[range]), shape: t.shape)
        }
        file.metadata = [
            "format": Checkpoint.format,
            "config": try flatConfigJSON(model: model, training: training),
            "step": String(step),
            "rng": "{\"generator\":\"xoshiro256**\",\"seed\":\(training.seed),\"batches\":\"stream per step\"}",
            Checkpoint.checksumKey: Checkpoint.checksum(file.tensors),
        ]
        try file.write(path)
    }

    /// Loads `path`; a corrupt, truncated or incomplete file is an error naming the file and the problem.
    /// Files without Adam moments (e.g. the reference's weights-only output) load with zero moments.
    public static func load(from path: String) throws -> Checkpoint {
        func fail(_ why: String) -> SparseGPTError { .checkpoint(file: path, problem: why) }
        let file = try SafeTensorsFile.read(path)
        guard let configText = file.metadata["config"] else { throw fail("metadata has no config") }
        let model: ModelConfig, training: TrainingConfig
        do {
            model = try JSONDecoder().decode(ModelConfig.self, from: Data(configText.utf8))
            training = try JSONDecoder().decode(TrainingConfig.self, from: Data(configText.utf8))
        } catch {
            throw fail("metadata config is not valid JSON for a model configuration (\(error))")
        }
        do { try model.validate() } catch { throw fail("metadata config: \(error)") }
        var step = 0
        if let s = file.metadata["step"] {
            guard let v = Int(s), v >= 0 else { throw fail("metadata step \"\(s)\" is not a non-negative integer") }
            step = v
        }
        let layout = ParameterLayout(model)
        var parameters = [Float](repeating: 0, count: layout.count)
        var m = parameters, v = parameters
        let hasMoments = file.tensors["adam.m.wte"] != nil
        for t in layout.tensors {
            let w = try file.tensor(t.name, file: path, shape: t.shape)
            guard w.dtype == .f32 else { throw fail("tensor \(t.name) is \(w.dtype.rawValue), expected F32") }
            parameters.replaceSubrange(t.offset..<(t.offset + t.count), with: w.floats)
            if hasMoments {
                m.replaceSubrange(t.offset..<(t.offset + t.count), with: try file.tensor("adam.m." + t.name, file: path, shape: t.shape).floats)
                v.replaceSubrange(t.offset..<(t.offset + t.count), with: try file.tensor("adam.v." + t.name, file: path, shape: t.shape).floats)
            }
        }
        // After the structure: a missing tensor or a wrong shape is the more useful message.
        // Files written elsewhere (the reference's) carry no checksum.
        if let stated = file.metadata[checksumKey] {
            let actual = checksum(file.tensors)
            guard stated == actual else {
                throw fail("tensor data does not match its checksum (\(actual), metadata says \(stated)): the file is corrupt")
            }
        }
        if let bad = parameters.firstIndex(where: { !$0.isFinite }) {
            throw fail("parameter value \(parameters[bad]) at flat index \(bad) is not finite")
        }
        return Checkpoint(model: model, training: training, step: step, parameters: parameters, adamM: m, adamV: v)
    }

    static let checksumKey = "data_checksum"

    /// FNV-1a 64 over the tensors' bytes in name order, word by word: any changed word changes it.
    static func checksum(_ tensors: [String: SafeTensor]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        let prime: UInt64 = 0x0000_0100_0000_01b3
        for name in tensors.keys.sorted() {
            tensors[name]!.bytes.withUnsafeBytes { raw in
                var index = 0
                while index + 8 <= raw.count {
                    hash = (hash ^ raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)) &* prime
                    index += 8
                }
                while index < raw.count {
                    hash = (hash ^ UInt64(raw[index])) &* prime
                    index += 1
                }
            }
        }
        return "fnv1a64:" + String(hash, radix: 16)
    }

    /// A model with the checkpoint's weights.
    public func makeModel(threads: Int = 1) throws -> GPT {
        try GPT(config: model, parameters: parameters, threads: threads)
    }

    /// A trainer that continues from the checkpoint's step with its moments.
    public func makeTrainer(threads: Int = 1) throws -> Trainer {
        try Trainer(model: makeModel(threads: threads), config: training, step: step, adamM: adamM, adamV: adamV)
    }
}
