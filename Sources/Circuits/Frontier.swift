import Foundation
import SparseGPT

/// A circuit: the nodes kept at the k that bisection found against a target task loss, with its
/// edges (SPEC 4).
public struct Circuit: Sendable {
    public let task: String
    public let lambda: Float
    public let target: Float
    /// Number of kept nodes (the top k by τ).
    public let k: Int
    /// Kept-node mask in global node order.
    public let keep: [Bool]
    /// Task loss on the test pairs with only these nodes kept (the rest mean-ablated).
    public let loss: Float
    public let edges: [EdgeGroup]
    /// Every (k, loss) bisection evaluated, in order.
    public let trace: [(k: Int, loss: Float)]

    public var nodeCount: Int { k }
    public var edgeCount: Int { edges.reduce(0) { $0 + $1.edges.count } }
}

/// Finds the circuit of τ at `target`: bisection over the top-k nodes by τ, each k scored by the
/// task loss on the test pairs, starting from the trained mask when `trainedNodes` is given (see
/// `bisectKeptNodes`). Nil when even the full model misses the target.
/// `lossAtK` may be a shared cache; see `Frontier` for how targets reuse evaluations.
public func findCircuit(task: String, tau: [Float], lambda: Float, target: Float, weights: CircuitWeights,
                        candidateTokens: [Int], trainedNodes: Int? = nil, lossAtK: (Int) throws -> Float) rethrows -> Circuit? {
    guard let found = try bisectKeptNodes(count: tau.count, target: target, trainedNodes: trainedNodes, loss: lossAtK) else {
        return nil
    }
    let keep = keepTop(tau, found.k)
    return Circuit(task: task, lambda: lambda, target: target, k: found.k, keep: keep, loss: found.loss,
                   edges: circuitEdges(weights: weights, keep: keep, candidateTokens: candidateTokens),
                   trace: found.trace)
}

/// Where bisection over k starts.
public enum BisectionStart: String, Codable, CaseIterable, Sendable {
    /// From the trained mask (τ > 0) when it reaches the target, else from every node: the circuit
    /// is the mask the pruning objective found, trimmed by bisection.
    case trainedMask = "trained_mask"
    /// From every node, as reference/README "Conventions" (k = N first).
    case allNodes = "all_nodes"
}

/// Settings of a frontier: several λ × several target losses (SPEC 4 defaults).
public struct FrontierSettings: Codable, Equatable, Sendable {
    public var lambdas: [Float] = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
    public var targets: [Float] = [0.05, 0.1, 0.15, 0.2, 0.3]
    public var pruning = PruningSettings()
    public var bisection = BisectionStart.trainedMask

    public init() {}

    public func validate() throws {
        guard !lambdas.isEmpty, lambdas.allSatisfy({ $0 >= 0 }) else {
            throw CircuitError.invalidSettings("λ list must be nonempty and ≥ 0, got \(lambdas)")
        }
        guard !targets.isEmpty, targets.allSatisfy({ $0 > 0 }) else {
            throw CircuitError.invalidSettings("target losses must be nonempty and > 0, got \(targets)")
        }
        try pruning.validate()
    }
}

/// The frontier of one (model, task): for each target loss, the smallest circuit (fewest edges,
/// then fewest nodes) that any λ reached; `nil` marks a target no λ reached.
public struct Frontier: Sendable {
    public struct Point: Sendable {
        public let target: Float
        /// Nil when no λ gave a circuit at this target: unreachable, never size 0.
        public let circuit: Circuit?
    }

    /// One λ's mask training and its circuits, kept for inspection.
    public struct Run: Sendable {
        public let lambda: Float
        public let tau: [Float]
        /// Task loss on the last training batch.
        public let finalTrainLoss: Float
        public let circuits: [Float: Circuit]
        /// The nodes the hard mask kept at the end of training (τ > 0), their task loss on the
        /// test pairs and their edges: the circuit the masks were trained as, which bisection
        /// need not find since the loss is not monotone in k.
        public let trainedNodes: Int
        public let trainedLoss: Float
        public let trainedEdges: Int
        public let seconds: Double
    }

    public let task: String
    /// Task loss of the unpruned model on the test pairs.
    public let fullLoss: Float
    public let points: [Point]
    public let runs: [Run]
    public let seconds: Double

    public func point(at target: Float) -> Point? { points.first { $0.target == target } }
}

/// Runs a whole frontier: trains τ for every λ on the train pairs, then bisects every target on
/// the test pairs. Loss evaluations at the same k for the same τ are shared between targets.
/// The λ runs go one after another; a model with replicas (`PrunableGPT`) spreads each evaluation
/// over the cores.
public func pruneFrontier(model: AblatableModel, weights: CircuitWeights, means: [Float], data: TaskData,
                          settings: FrontierSettings = FrontierSettings(),
                          onStep: ((Float, MaskTrainingStep) -> Void)? = nil) throws -> Frontier {
    try settings.validate()
    let start = Date()
    let n = model.nodeLayout.count
    let test = data.test.trimmed()
    let candidates = data.test.candidateTokens
    let fullLoss = try model.taskLoss(test, masks: [Float](repeating: 1, count: n), means: means, maskGradient: false).loss

    func run(_ lambda: Float) throws -> Frontier.Run {
        let runStart = Date()
        var lastLoss = Float.nan
        let tau = try trainMaskLogits(model: model, means: means, pairs: data.train, lambda: lambda,
                                      settings: settings.pruning) { step in
            lastLoss = step.taskLoss
            onStep?(lambda, step)
        }
        var losses: [Int: Float] = [n: fullLoss]
        let lossAtK: (Int) throws -> Float = { k in
            if let known = losses[k] { return known }
            let value = try model.taskLoss(test, masks: keepTop(tau, k).map { $0 ? 1 : 0 }, means: means, maskGradient: false).loss
            losses[k] = value
            return value
        }
        let trainedNodes = tau.filter { $0 > 0 }.count
        var circuits: [Float: Circuit] = [:]
        for target in settings.targets {
            circuits[target] = try findCircuit(task: data.task, tau: tau, lambda: lambda, target: target, weights: weights,
                                               candidateTokens: candidates,
                                               trainedNodes: settings.bisection == .trainedMask ? trainedNodes : nil,
                                               lossAtK: lossAtK)
        }
        return Frontier.Run(lambda: lambda, tau: tau, finalTrainLoss: lastLoss, circuits: circuits,
                            trainedNodes: trainedNodes, trainedLoss: try lossAtK(trainedNodes),
                            trainedEdges: countEdges(weights: weights, keep: keepTop(tau, trainedNodes), candidateTokens: candidates),
                            seconds: Date().timeIntervalSince(runStart))
    }

    let runs = try settings.lambdas.map(run)

    let points = settings.targets.map { target in
        let reached = runs.compactMap { $0.circuits[target] }
        let best = reached.min { ($0.edgeCount, $0.nodeCount) < ($1.edgeCount, $1.nodeCount) }
        return Frontier.Point(target: target, circuit: best)
    }
    return Frontier(task: data.task, fullLoss: fullLoss, points: points, runs: runs,
                    seconds: Date().timeIntervalSince(start))
}
