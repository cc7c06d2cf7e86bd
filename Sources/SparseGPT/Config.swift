import Foundation

/// Errors of the engine: each names the file, field or tensor that is wrong.
public enum SparseGPTError: Error, CustomStringConvertible, Equatable {
    case invalidConfig(String)
    case badInput(String)
    case checkpoint(file: String, problem: String)

    public var description: String {
        switch self {
        case .invalidConfig(let why): return "invalid configuration: \(why)"
        case .badInput(let why): return "bad input: \(why)"
        case .checkpoint(let file, let problem): return "checkpoint \(file): \(problem)"
        }
    }
}

/// The architecture of the method. JSON/YAML keys are the reference's (`d_model`, `n_layer`, ...).
public struct ModelConfig: Codable, Equatable, Sendable {
    public var vocab: Int
    public var context: Int
    public var dModel: Int
    public var nLayer: Int
    public var dHead: Int
    /// AbsTopK keeps ceil(afrac * n) entries; 1 turns it off.
    public var afrac: Double

    public init(vocab: Int = 512, context: Int = 64, dModel: Int = 64, nLayer: Int = 2, dHead: Int = 16, afrac: Double = 0.25) {
        self.vocab = vocab; self.context = context; self.dModel = dModel
        self.nLayer = nLayer; self.dHead = dHead; self.afrac = afrac
    }

    enum CodingKeys: String, CodingKey {
        case vocab, context, dModel = "d_model", nLayer = "n_layer", dHead = "d_head", afrac
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ModelConfig()
        vocab = try c.decodeIfPresent(Int.self, forKey: .vocab) ?? d.vocab
        context = try c.decodeIfPresent(Int.self, forKey: .context) ?? d.context
        dModel = try c.decodeIfPresent(Int.self, forKey: .dModel) ?? d.dModel
        nLayer = try c.decodeIfPresent(Int.self, forKey: .nLayer) ?? d.nLayer
        dHead = try c.decodeIfPresent(Int.self, forKey: .dHead) ?? d.dHead
        afrac = try c.decodeIfPresent(Double.self, forKey: .afrac) ?? d.afrac
    }

    public var nHead: Int { dModel / dHead }

    /// Rejects shapes the model cannot be built with.
    public func validate() throws {
        guard vocab >= 2 else { throw SparseGPTError.invalidConfig("vocab \(vocab) must be at least 2") }
        guard context >= 1 else { throw SparseGPTError.invalidConfig("context \(context) must be positive") }
        guard nLayer >= 1 else { throw SparseGPTError.invalidConfig("n_layer \(nLayer) must be positive") }
        guard dHead >= 1, dModel >= dHead, dModel % dHead == 0 else {
            throw SparseGPTError.invalidConfig("d_model \(dModel) must be a positive multiple of d_head \(dHead)")
        }
        guard afrac > 0, afrac <= 1 else { throw SparseGPTError.invalidConfig("afrac \(afrac) must be in (0, 1]") }
    }
}

/// Weight-sparse training of the method, defaults as there. JSON/YAML keys are the reference's.
public struct TrainingConfig: Codable, Equatable, Sendable {
    /// Fraction of nonzeros kept in c_attn, attn.c_proj, c_fc, mlp.c_proj; 1 = dense.
    public var density: Double
    /// Fraction kept in wte, wpe, lm_head; nil means min(1, 4 * density).
    public var embedDensity: Double?
    public var lr: Double
    public var steps: Int
    public var batch: Int
    public var seed: UInt64
    public var beta1: Double
    public var beta2: Double
    public var adamEps: Double
    public var weightDecay: Double
    /// g /= rms(g) + gradEps.
    public var gradEps: Double
    public var minPerNeuron: Int
    public var warmupFrac: Double
    public var annealStart: Double
    public var annealEnd: Double

    public init(density: Double = 1, embedDensity: Double? = nil, lr: Double = 1.28e-2, steps: Int = 1000,
                batch: Int = 32, seed: UInt64 = 0, beta1: Double = 0.9, beta2: Double = 0.95, adamEps: Double = 0.1,
                weightDecay: Double = 0.1, gradEps: Double = 1e-5, minPerNeuron: Int = 4, warmupFrac: Double = 0.01,
                annealStart: Double = 0.01, annealEnd: Double = 0.5) {
        self.density = density; self.embedDensity = embedDensity; self.lr = lr; self.steps = steps
        self.batch = batch; self.seed = seed; self.beta1 = beta1; self.beta2 = beta2; self.adamEps = adamEps
        self.weightDecay = weightDecay; self.gradEps = gradEps; self.minPerNeuron = minPerNeuron
        self.warmupFrac = warmupFrac; self.annealStart = annealStart; self.annealEnd = annealEnd
    }

    enum CodingKeys: String, CodingKey {
        case density, embedDensity = "embed_density", lr, steps, batch, seed, beta1, beta2, adamEps = "adam_eps"
        case weightDecay = "weight_decay", gradEps = "grad_eps", minPerNeuron = "min_per_neuron"
        case warmupFrac = "warmup_frac", annealStart = "anneal_start", annealEnd = "anneal_end"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = TrainingConfig()
        density = try c.decodeIfPresent(Double.self, forKey: .density) ?? d.density
        embedDensity = try c.decodeIfPresent(Double.self, forKey: .embedDensity)
        lr = try c.decodeIfPresent(Double.self, forKey: .lr) ?? d.lr
        steps = try c.decodeIfPresent(Int.self, forKey: .steps) ?? d.steps
        batch = try c.decodeIfPresent(Int.self, forKey: .batch) ?? d.batch
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? d.seed
        beta1 = try c.decodeIfPresent(Double.self, forKey: .beta1) ?? d.beta1
        beta2 = try c.decodeIfPresent(Double.self, forKey: .beta2) ?? d.beta2
        adamEps = try c.decodeIfPresent(Double.self, forKey: .adamEps) ?? d.adamEps
        weightDecay = try c.decodeIfPresent(Double.self, forKey: .weightDecay) ?? d.weightDecay
        gradEps = try c.decodeIfPresent(Double.self, forKey: .gradEps) ?? d.gradEps
        minPerNeuron = try c.decodeIfPresent(Int.self, forKey: .minPerNeuron) ?? d.minPerNeuron
        warmupFrac = try c.decodeIfPresent(Double.self, forKey: .warmupFrac) ?? d.warmupFrac
        annealStart = try c.decodeIfPresent(Double.self, forKey: .annealStart) ?? d.annealStart
        annealEnd = try c.decodeIfPresent(Double.self, forKey: .annealEnd) ?? d.annealEnd
    }

    /// The density of wte, wpe and lm_head: `embedDensity`, or min(1, 4 * density) when unset.
    public var resolvedEmbedDensity: Double { embedDensity ?? min(1, 4 * density) }

    /// Checks the values a trainer can run with (ranges, positive counts).
    public func validateRanges() throws {
        guard density > 0, density <= 1 else { throw SparseGPTError.invalidConfig("density \(density) must be in (0, 1]") }
        guard resolvedEmbedDensity > 0, resolvedEmbedDensity <= 1 else {
            throw SparseGPTError.invalidConfig("embed_density \(resolvedEmbedDensity) must be in (0, 1]")
        }
        guard steps >= 1 else { throw SparseGPTError.invalidConfig("steps \(steps) must be positive") }
        guard batch >= 1 else { throw SparseGPTError.invalidConfig("batch \(batch) must be positive") }
        guard lr >= 0 else { throw SparseGPTError.invalidConfig("lr \(lr) must not be negative") }
        guard minPerNeuron >= 0 else { throw SparseGPTError.invalidConfig("min_per_neuron \(minPerNeuron) must not be negative") }
        guard warmupFrac > 0 else { throw SparseGPTError.invalidConfig("warmup_frac \(warmupFrac) must be positive") }
        guard annealStart < annealEnd else {
            throw SparseGPTError.invalidConfig("anneal_start \(annealStart) must be below anneal_end \(annealEnd)")
        }
    }

    /// The full check for a training run or sweep point: the ranges, plus the method's floor rule
    /// density * d_model >= 16 (below it the per-neuron floor of 4 entries dominates the budget).
    public func validate(for model: ModelConfig) throws {
        try model.validate()
        try validateRanges()
        if density < 1 && density * Double(model.dModel) < 16 {
            throw SparseGPTError.invalidConfig(
                "density \(density) at d_model \(model.dModel) gives density*d_model = \(density * Double(model.dModel)) < 16: "
                + "the per-neuron floor would dominate; use density >= \(16.0 / Double(model.dModel)) or a wider model")
        }
    }
}

/// Learning rate and densities of optimizer step t = 0 ..< steps.
public struct ScheduleStep: Equatable, Sendable {
    public var lr: Double
    public var density: Double
    public var embedDensity: Double
}

extension TrainingConfig {
    /// The sharkfin schedule: densities anneal from 1 (until annealStart) linearly to their targets (at annealEnd);
    /// lr_t = lr * min((t+1) / (warmupFrac N), 1 - t/N) * sqrt(density / d_now).
    public func schedule(step t: Int) -> ScheduleStep {
        let n = Double(steps), p = Double(t + 1) / n
        func dens(_ target: Double) -> Double {
            if p <= annealStart { return 1 }
            if p >= annealEnd { return target }
            return 1 + (target - 1) * ((p - annealStart) / (annealEnd - annealStart))
        }
        let dNow = dens(density), eNow = dens(resolvedEmbedDensity)
        let rate = lr * min(Double(t + 1) / (warmupFrac * n), 1 - Double(t) / n) * (density / dNow).squareRoot()
        return ScheduleStep(lr: rate, density: dNow, embedDensity: eNow)
    }
}

/// Encodes a model and a training configuration into one flat JSON object, the reference's `config` layout.
public func flatConfigJSON(model: ModelConfig, training: TrainingConfig) throws -> String {
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys]
    var merged = try JSONSerialization.jsonObject(with: enc.encode(model)) as! [String: Any]
    let train = try JSONSerialization.jsonObject(with: enc.encode(training)) as! [String: Any]
    merged.merge(train) { a, _ in a }
    merged["embed_density"] = training.resolvedEmbedDensity
    let data = try JSONSerialization.data(withJSONObject: merged, options: [.sortedKeys])
    return String(decoding: data, as: UTF8.self)
}
