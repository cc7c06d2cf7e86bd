import Foundation
import SparseGPT

/// Settings of one mask-training run.
public struct PruningSettings: Codable, Equatable, Sendable {
    public var steps = 400
    public var learningRate: Float = 3e-3
    /// Pairs per step (both prompts of each); all pairs when there are at most this many.
    public var batchPairs = 64
    public var temperature: Float = 1
    public var tauInit: Float = 0.1
    /// Standard deviation of Gaussian noise added to the initial τ. Without it every node whose
    /// task gradient is below λ moves at Adam's full step and they all cross 0 on the same step:
    /// on wide models the masks then drop to chance at once and never recover (README "Method
    /// notes"). 0 is the reference's convention, which the golden tests check.
    public var tauNoise: Float = 0.05
    public var seed: UInt64 = 0

    public init() {}

    public func validate() throws {
        guard steps >= 0 else { throw CircuitError.invalidSettings("steps must be ≥ 0, got \(steps)") }
        guard learningRate > 0 else { throw CircuitError.invalidSettings("learning rate must be > 0, got \(learningRate)") }
        guard batchPairs > 0 else { throw CircuitError.invalidSettings("batch pairs must be > 0, got \(batchPairs)") }
        guard temperature > 0 else { throw CircuitError.invalidSettings("temperature must be > 0, got \(temperature)") }
        guard tauNoise >= 0 else { throw CircuitError.invalidSettings("τ noise must be ≥ 0, got \(tauNoise)") }
    }
}

/// What one mask-training step reports.
public struct MaskTrainingStep: Sendable {
    public let step: Int
    public let taskLoss: Float
    /// Task loss + λ · Σ m.
    public let objective: Float
    /// Σ m: nodes kept by the hard mask during this step.
    public let keptNodes: Int
    /// d objective / d τ of this step.
    public let tauGradient: [Float]
    /// τ after this step's update.
    public let tau: [Float]
}

/// Learns the node mask logits τ of `model` on `pairs`: each step takes a batch of
/// pairs, evaluates task loss + λ · Σ m with m = 1[τ > 0] and mean ablation, back-propagates
/// straight through the hard mask, takes an Adam step on τ and clamps τ to [−1, 1].
/// Returns the final τ in global node order.
public func trainMaskLogits(model: AblatableModel, means: [Float], pairs: TaskPairs, lambda: Float,
                            settings: PruningSettings = PruningSettings(),
                            onStep: ((MaskTrainingStep) -> Void)? = nil) throws -> [Float] {
    try settings.validate()
    let n = model.nodeLayout.count
    guard means.count == n else { throw CircuitError.shapeMismatch("\(means.count) node means for \(n) nodes") }
    var random = SplitMix64(seed: settings.seed)
    var tau = (0..<n).map { _ in settings.tauInit + settings.tauNoise * random.nextGaussian() }
    var adam = TauAdam(count: n, learningRate: settings.learningRate)
    let everything = pairs.pairCount <= settings.batchPairs ? pairs.trimmed() : nil
    for step in stride(from: 1, through: settings.steps, by: 1) {
        let batch = everything ?? pairs.selecting(pairs: random.sample(settings.batchPairs, of: pairs.pairCount))
        let masks = StraightThroughMask.mask(tau)
        let (loss, dMask) = try model.taskLoss(batch, masks: masks, means: means, maskGradient: true)
        guard let dMask, dMask.count == n else {
            throw CircuitError.model("the model returned no mask gradient of \(n) nodes")
        }
        let kept = masks.reduce(0, +)
        let gradient = StraightThroughMask.tauGradient(tau: tau, maskGradient: dMask.map { $0 + lambda },
                                                       temperature: settings.temperature)
        adam.update(&tau, gradient: gradient)
        onStep?(MaskTrainingStep(step: step, taskLoss: loss, objective: loss + lambda * kept, keptNodes: Int(kept),
                                 tauGradient: gradient, tau: tau))
    }
    return tau
}

/// A small seeded generator (SplitMix64) for batch sampling and τ noise; deterministic across platforms.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform Double in [0, 1).
    public mutating func nextUniform() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// A standard normal sample (Box–Muller).
    public mutating func nextGaussian() -> Float {
        let u = max(nextUniform(), 1e-300), v = nextUniform()
        return Float((-2 * log(u)).squareRoot() * cos(2 * Double.pi * v))
    }

    /// `k` distinct values from 0..<n in random order (partial Fisher–Yates).
    public mutating func sample(_ k: Int, of n: Int) -> [Int] {
        var pool = Array(0..<n)
        for i in 0..<min(k, n) {
            let j = i + Int(next() % UInt64(n - i))
            pool.swapAt(i, j)
        }
        return Array(pool.prefix(k))
    }
}
