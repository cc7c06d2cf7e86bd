import Foundation

/// The hard node mask of the method with its straight-through gradient: forward m = 1[τ > 0],
/// backward dm/dτ = σ'(τ/T)/T.
public enum StraightThroughMask {
    /// m = 1 where τ > 0, else 0.
    public static func mask(_ tau: [Float]) -> [Float] {
        tau.map { $0 > 0 ? 1 : 0 }
    }

    /// d objective / d τ from d objective / d m: dm · σ(τ/T)(1 − σ(τ/T)) / T.
    public static func tauGradient(tau: [Float], maskGradient: [Float], temperature: Float = 1) -> [Float] {
        precondition(tau.count == maskGradient.count, "τ and its mask gradient differ in length")
        var out = [Float](repeating: 0, count: tau.count)
        for i in 0..<tau.count {
            let s = 1 / (1 + exp(-tau[i] / temperature))
            out[i] = maskGradient[i] * s * (1 - s) / temperature
        }
        return out
    }
}

/// Adam on the mask logits τ, bias-corrected with the step count, followed by clamping τ to
/// [−clamp, clamp] (betas 0.9/0.999, eps 1e-8).
public struct TauAdam: Sendable {
    public var learningRate: Float
    public var beta1: Float
    public var beta2: Float
    public var epsilon: Float
    public var clamp: Float
    public private(set) var step = 0
    private var firstMoment: [Float]
    private var secondMoment: [Float]

    public init(count: Int, learningRate: Float = 3e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                epsilon: Float = 1e-8, clamp: Float = 1) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.clamp = clamp
        firstMoment = [Float](repeating: 0, count: count)
        secondMoment = [Float](repeating: 0, count: count)
    }

    /// One Adam step of τ along `gradient`, then the clamp.
    public mutating func update(_ tau: inout [Float], gradient: [Float]) {
        precondition(tau.count == firstMoment.count && gradient.count == tau.count, "τ, gradient and moments differ in length")
        step += 1
        let correction1 = Float(1 - pow(Double(beta1), Double(step)))
        let correction2 = Float(1 - pow(Double(beta2), Double(step)))
        for i in 0..<tau.count {
            let g = gradient[i]
            firstMoment[i] = beta1 * firstMoment[i] + (1 - beta1) * g
            secondMoment[i] = beta2 * secondMoment[i] + (1 - beta2) * g * g
            let update = learningRate * (firstMoment[i] / correction1) / ((secondMoment[i] / correction2).squareRoot() + epsilon)
            tau[i] = min(max(tau[i] - update, -clamp), clamp)
        }
    }
}

/// The k nodes of largest τ as a 0/1 mask; ties go to the lower global node index.
public func keepTop(_ tau: [Float], _ k: Int) -> [Bool] {
    var keep = [Bool](repeating: false, count: tau.count)
    for index in rankByTau(tau).prefix(k) { keep[index] = true }
    return keep
}

/// Node indices ordered by descending τ, ties by ascending index.
public func rankByTau(_ tau: [Float]) -> [Int] {
    Array(0..<tau.count).sorted { tau[$0] != tau[$1] ? tau[$0] > tau[$1] : $0 < $1 }
}
