import Foundation
import SparseGPT

/// A circuit: the nodes kept at the k that bisection found against a target task loss, with its
/// edges.
public struct Circuit: Sendable {
    public let task: String
    public let lambda: Float
    public let target: Float
    /// Number of kept nodes (the top k by τ).
    public let k: Int
    /// Kept-node mask in global node order.
    public let keep: [Bool]
    /// Task loss on the test pairs with only these nodes kept (the rest mean-ablated), calibrated
    /// when `calibration` is set.
    public let loss: Float
    /// The scale and shift fitted on the train pairs for this circuit; nil when uncalibrated.
    public let calibration: LogitCalibration?
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
/// `calibrationAtK` names the transform the loss at k was scored with, if any.
public func findCircuit(task: String, tau: [Float], lambda: Float, target: Float, weights: CircuitWeights,
                        candidateTokens: [Int], trainedNodes: Int? = nil,
                        calibrationAtK: (Int) -> LogitCalibration? = { _ in nil },
                        lossAtK: (Int) throws -> Float) rethrows -> Circuit? {
    guard let found = try bisectKeptNodes(count: tau.count, target: target, trainedNodes: trainedNodes, loss: lossAtK) else {
        return nil
    }
    let keep = keepTop(tau, found.k)
    return Circuit(task: task, lambda: lambda, target: target, k: found.k, keep: keep, loss: found.loss,
                   calibration: calibrationAtK(found.k),
                   edges: circuitEdges(weights: weights, keep: keep, candidateTokens: candidateTokens),
                   trace: found.trace)
}

/// Where bisection over k starts.
public enum BisectionStart: String, Codable, CaseIterable, Sendable {
    /// From the trained mask (τ > 0) when it reaches the target, else from every node: the circuit
    /// is the mask the pruning objective found, trimmed by bisection.
    case trainedMask = "trained_mask"
    /// From every node, as the method prescribes (k = N first).
    case allNodes = "all_nodes"
}

/// Settings of a frontier: several λ × several target losses.
public struct FrontierSettings: Codable, Equatable, Sendable {
    public var lambdas: [Float] = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
    public var targets: [Float] = [0.05, 0.1, 0.15, 0.2, 0.3]
    public var pruning = PruningSettings()
    public var bisection = BisectionStart.trainedMask
    /// Judge every candidate circuit after fitting a scale and shift of its candidate logits on
    /// the train pairs (`LogitCalibration`); false is the reference's uncalibrated convention.
    public var calibration = true
    /// Train pairs the calibration is fitted on: the first this many (pairs are generated in
    /// random order). Two parameters need far fewer; the cap bounds the cost per k evaluated.
    public var calibrationPairs = 256
    /// Newton steps of the calibration fit.
    public var calibrationSteps = 16
    /// τ initialisations per λ; the frontier keeps the smallest circuit of all. The first is
    /// `pruning` as given; the others use seed + i and τ noise of at least `reinitializationNoise`.
    public var tauInitializations = 1
    /// A circuit of more than this fraction of the model's nodes is collapsed: it never counts as
    /// a size (see README "Method notes").
    public var collapseFraction: Float = 0.5
    /// λ tried past each end of `lambdas`, one at a time, while the smallest circuit at some target
    /// comes from that end: a grid whose end holds a best circuit has not bracketed the model's best
    /// λ. Each step multiplies the top λ (or divides the bottom one) by `lambdaExtensionFactor`.
    public var lambdaExtensions = 2
    /// Times each λ whose circuit collapsed at a target no λ reached uncollapsed is trained again
    /// from a fresh τ initialisation.
    public var collapseRetries = 1

    /// τ noise (standard deviation) of the extra initialisations and retries: enough to reorder
    /// which nodes the masks push out first (τ starts at 0.1 and moves at most lr per step).
    public static let reinitializationNoise: Float = 0.05
    /// The step of an extension past the grid's end: the default grid's own step.
    public static let lambdaExtensionFactor: Float = 3

    public init() {}

    public func validate() throws {
        guard !lambdas.isEmpty, lambdas.allSatisfy({ $0 >= 0 }) else {
            throw CircuitError.invalidSettings("λ list must be nonempty and ≥ 0, got \(lambdas)")
        }
        guard !targets.isEmpty, targets.allSatisfy({ $0 > 0 }) else {
            throw CircuitError.invalidSettings("target losses must be nonempty and > 0, got \(targets)")
        }
        guard calibrationPairs >= 1 else { throw CircuitError.invalidSettings("calibration pairs must be ≥ 1, got \(calibrationPairs)") }
        guard calibrationSteps >= 0 else { throw CircuitError.invalidSettings("calibration steps must be ≥ 0, got \(calibrationSteps)") }
        guard tauInitializations >= 1 else {
            throw CircuitError.invalidSettings("τ initialisations must be ≥ 1, got \(tauInitializations)")
        }
        guard collapseFraction > 0, collapseFraction <= 1 else {
            throw CircuitError.invalidSettings("collapse fraction must be in (0, 1], got \(collapseFraction)")
        }
        guard lambdaExtensions >= 0 else { throw CircuitError.invalidSettings("λ extensions must be ≥ 0, got \(lambdaExtensions)") }
        guard collapseRetries >= 0 else { throw CircuitError.invalidSettings("collapse retries must be ≥ 0, got \(collapseRetries)") }
        try pruning.validate()
    }

    /// The mask-training settings of τ initialisation `index` (0 is `pruning` itself).
    public func pruning(initialization index: Int) -> PruningSettings {
        guard index > 0 else { return pruning }
        var settings = pruning
        settings.seed = pruning.seed &+ UInt64(index)
        settings.tauNoise = max(pruning.tauNoise, Self.reinitializationNoise)
        return settings
    }
}

/// What a frontier says about one target loss.
public enum CircuitStatus: String, Codable, Sendable {
    /// A circuit reached the target and keeps at most the collapse fraction of the nodes.
    case reachable
    /// No λ reached the target (or the full model misses it).
    case unreachable
    /// Circuits reached the target, but every one keeps more than the collapse fraction of the
    /// nodes, even after retries: the masks collapsed, and there is no circuit to count.
    case collapsed
}

/// The frontier of one (model, task): for each target loss, the smallest circuit (fewest edges,
/// then fewest nodes) that any λ reached; `nil` marks a target no λ reached.
public struct Frontier: Sendable {
    public struct Point: Sendable {
        public let target: Float
        public let status: CircuitStatus
        /// The smallest uncollapsed circuit; nil unless `status` is reachable, never size 0.
        public let circuit: Circuit?
        /// When collapsed: the smallest collapsed circuit, for inspection only.
        public let collapsedCircuit: Circuit?
        /// Necessity: the task loss on the test pairs of the full model with only the
        /// circuit's nodes ablated, scored as the circuit was (calibrated when it was).
        public let necessityLoss: Float?
        /// The same without calibration, when the circuit was calibrated: calibration rescales
        /// whatever signal the rest of the model still carries, so it is the stricter of the two.
        public let uncalibratedNecessityLoss: Float?
    }

    /// One λ's mask training (from one τ initialisation) and its circuits, kept for inspection.
    public struct Run: Sendable {
        public let lambda: Float
        /// 0 for the first τ initialisation; higher for extra initialisations and retries.
        public let initialization: Int
        public let tau: [Float]
        /// Task loss on the last training batch.
        public let finalTrainLoss: Float
        /// Every circuit this run reached, collapsed ones included.
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
    /// Task loss of the unpruned model on the test pairs (uncalibrated: the model's own).
    public let fullLoss: Float
    /// The same, calibrated as circuits are; nil without calibration.
    public let calibratedFullLoss: Float?
    /// The collapse threshold in nodes: circuits above it are collapsed.
    public let collapseNodes: Int
    public let points: [Point]
    public let runs: [Run]
    public let seconds: Double

    public func point(at target: Float) -> Point? { points.first { $0.target == target } }
}

/// How candidate circuits (node masks) are judged on the test pairs: the plain task loss, or the
/// task loss after a calibration fitted on (a prefix of) the train pairs with the same masks.
struct MaskScorer {
    let model: AblatableModel
    let means: [Float]
    let test: TaskPairs
    /// Nil without calibration.
    let fit: TaskPairs?
    /// The full model's margins on `fit`, which bound every circuit's calibrated scale.
    let fullFitMargins: [Float]
    let steps: Int

    init(model: AblatableModel, means: [Float], data: TaskData, settings: FrontierSettings) throws {
        self.model = model
        self.means = means
        test = data.test.trimmed()
        fit = settings.calibration
            ? data.train.selecting(pairs: Array(0..<min(settings.calibrationPairs, data.train.pairCount))) : nil
        steps = settings.calibrationSteps
        let allKept = [Float](repeating: 1, count: model.nodeLayout.count)
        fullFitMargins = try fit.map { try model.logitMargins($0, masks: allKept, means: means) } ?? []
    }

    func score(_ masks: [Float]) throws -> (loss: Float, calibration: LogitCalibration?) {
        guard let fit else {
            return (try model.taskLoss(test, masks: masks, means: means, maskGradient: false).loss, nil)
        }
        let fitMargins = try model.logitMargins(fit, masks: masks, means: means)
        let calibration = LogitCalibration.fit(margins: fitMargins, orientations: fit.candidateOrientations, steps: steps,
                                               maxScale: LogitCalibration.maxScale(margins: fitMargins, matching: fullFitMargins))
        let margins = try model.logitMargins(test, masks: masks, means: means)
        return (calibration.loss(margins: margins, orientations: test.candidateOrientations), calibration)
    }
}

/// Runs a whole frontier: trains τ for every λ (and τ initialisation) on the train pairs, then
/// bisects every target on the test pairs. Loss evaluations at the same k for the same τ are
/// shared between targets. Targets whose every circuit collapsed are retried from fresh τ
/// initialisations. The runs go one after another; a model with replicas (`PrunableGPT`) spreads
/// each evaluation over the cores.
public func pruneFrontier(model: AblatableModel, weights: CircuitWeights, means: [Float], data: TaskData,
                          settings: FrontierSettings = FrontierSettings(),
                          onStep: ((Float, MaskTrainingStep) -> Void)? = nil) throws -> Frontier {
    try settings.validate()
    let start = Date()
    let n = model.nodeLayout.count
    let scorer = try MaskScorer(model: model, means: means, data: data, settings: settings)
    let candidates = data.test.candidateTokens
    let allKept = [Float](repeating: 1, count: n)
    let fullLoss = try model.taskLoss(scorer.test, masks: allKept, means: means, maskGradient: false).loss
    let fullScore: (loss: Float, calibration: LogitCalibration?) = try settings.calibration ? scorer.score(allKept) : (fullLoss, nil)
    let collapseNodes = Int((Double(settings.collapseFraction) * Double(n)).rounded(.down))
    func isCollapsed(_ circuit: Circuit) -> Bool { circuit.k > collapseNodes }

    func run(_ lambda: Float, initialization: Int) throws -> Frontier.Run {
        let runStart = Date()
        var lastLoss = Float.nan
        let tau = try trainMaskLogits(model: model, means: means, pairs: data.train, lambda: lambda,
                                      settings: settings.pruning(initialization: initialization)) { step in
            lastLoss = step.taskLoss
            onStep?(lambda, step)
        }
        var scores: [Int: (loss: Float, calibration: LogitCalibration?)] = [n: fullScore]
        let lossAtK: (Int) throws -> Float = { k in
            if let known = scores[k] { return known.loss }
            let value = try scorer.score(keepTop(tau, k).map { $0 ? 1 : 0 })
            scores[k] = value
            return value.loss
        }
        let trainedNodes = tau.filter { $0 > 0 }.count
        var circuits: [Float: Circuit] = [:]
        for target in settings.targets {
            circuits[target] = try findCircuit(task: data.task, tau: tau, lambda: lambda, target: target, weights: weights,
                                               candidateTokens: candidates,
                                               trainedNodes: settings.bisection == .trainedMask ? trainedNodes : nil,
                                               calibrationAtK: { scores[$0]?.calibration }, lossAtK: lossAtK)
        }
        return Frontier.Run(lambda: lambda, initialization: initialization, tau: tau, finalTrainLoss: lastLoss,
                            circuits: circuits, trainedNodes: trainedNodes, trainedLoss: try lossAtK(trainedNodes),
                            trainedEdges: countEdges(weights: weights, keep: keepTop(tau, trainedNodes), candidateTokens: candidates),
                            seconds: Date().timeIntervalSince(runStart))
    }

    func smallest(_ circuits: [Circuit]) -> Circuit? {
        circuits.min { ($0.edgeCount, $0.nodeCount) < ($1.edgeCount, $1.nodeCount) }
    }
    /// Targets where circuits were reached but every one collapsed.
    func collapsedTargets(_ runs: [Frontier.Run]) -> [Float] {
        settings.targets.filter { target in
            let reached = runs.compactMap { $0.circuits[target] }
            return !reached.isEmpty && reached.allSatisfy(isCollapsed)
        }
    }

    /// 3 · 0.03 is 0.089999996 in Float; λ is read and written as the decimal it stands for (0.09).
    func decimal(_ lambda: Float) -> Float { Float(String(format: "%.6g", Double(lambda))) ?? lambda }
    /// The circuit a frontier reports at `target`: the smallest uncollapsed one any run reached.
    func bestCircuit(at target: Float, in runs: [Frontier.Run]) -> Circuit? {
        smallest(runs.compactMap { $0.circuits[target] }.filter { !isCollapsed($0) })
    }

    var runs: [Frontier.Run] = []
    var lambdas = settings.lambdas
    func runAll(_ lambda: Float) throws {
        for initialization in 0..<settings.tauInitializations { runs.append(try run(lambda, initialization: initialization)) }
    }
    for lambda in lambdas { try runAll(lambda) }
    var extendedUp = 0, extendedDown = 0
    while true {
        let bestLambdas = Set(settings.targets.compactMap { bestCircuit(at: $0, in: runs)?.lambda })
        guard let top = lambdas.max(), let bottom = lambdas.min() else { break }
        let next: Float
        if extendedUp < settings.lambdaExtensions, bestLambdas.contains(top) {
            next = decimal(top * FrontierSettings.lambdaExtensionFactor)
            extendedUp += 1
        } else if extendedDown < settings.lambdaExtensions, bottom > 0, bestLambdas.contains(bottom) {
            next = decimal(bottom / FrontierSettings.lambdaExtensionFactor)
            extendedDown += 1
        } else {
            break
        }
        lambdas.append(next)
        try runAll(next)
    }
    for retry in 0..<settings.collapseRetries {
        let targets = collapsedTargets(runs)
        guard !targets.isEmpty else { break }
        // Each λ that collapsed at one of those targets, once, from the next initialisation.
        let again = lambdas.filter { lambda in
            targets.contains { target in runs.contains { $0.lambda == lambda && $0.circuits[target].map(isCollapsed) == true } }
        }
        for lambda in again { runs.append(try run(lambda, initialization: settings.tauInitializations + retry)) }
    }

    let points = try settings.targets.map { target -> Frontier.Point in
        if let best = bestCircuit(at: target, in: runs) {
            let ablated: [Float] = best.keep.map { $0 ? 0 : 1 }
            let necessity = try scorer.score(ablated).loss
            let uncalibrated = settings.calibration
                ? try model.taskLoss(scorer.test, masks: ablated, means: means, maskGradient: false).loss : nil
            return Frontier.Point(target: target, status: .reachable, circuit: best, collapsedCircuit: nil,
                                  necessityLoss: necessity, uncalibratedNecessityLoss: uncalibrated)
        }
        if let collapsed = smallest(runs.compactMap { $0.circuits[target] }) {
            return Frontier.Point(target: target, status: .collapsed, circuit: nil, collapsedCircuit: collapsed,
                                  necessityLoss: nil, uncalibratedNecessityLoss: nil)
        }
        return Frontier.Point(target: target, status: .unreachable, circuit: nil, collapsedCircuit: nil,
                              necessityLoss: nil, uncalibratedNecessityLoss: nil)
    }
    return Frontier(task: data.task, fullLoss: fullLoss, calibratedFullLoss: settings.calibration ? fullScore.loss : nil,
                    collapseNodes: collapseNodes, points: points, runs: runs, seconds: Date().timeIntervalSince(start))
}
