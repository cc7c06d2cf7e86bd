import Foundation

/// One model of a sweep, as the report sees it.
public struct ReportModel: Hashable, Codable, Sendable {
    public var density: Double
    public var embedDensity: Double
    public var dModel: Int
    public var afrac: Double
    public var seed: Int
    /// The random-init control of its shape: never trained, kept off the frontier and the headline.
    public var randomInit: Bool
    /// Held-out next-token loss; nil while the model is not trained yet.
    public var pretrainLoss: Double?
    public var nonzeroWeights: Int?

    public init(density: Double, embedDensity: Double, dModel: Int, afrac: Double, seed: Int, randomInit: Bool = false,
                pretrainLoss: Double? = nil, nonzeroWeights: Int? = nil) {
        self.density = density
        self.embedDensity = embedDensity
        self.dModel = dModel
        self.afrac = afrac
        self.seed = seed
        self.randomInit = randomInit
        self.pretrainLoss = pretrainLoss
        self.nonzeroWeights = nonzeroWeights
    }

    /// What a model is for in the report.
    public enum Role: String, Sendable {
        /// Density 1 and afrac 1: dense in weights and activations, the headline's baseline.
        case dense
        /// Density 1 with AbsTopK (afrac < 1): an extra series, never the baseline.
        case denseWithAbsTopK = "dense_with_abstopk"
        case sparse
        /// A sparse shape's initialisation, projected to its density and pruned untrained.
        case randomInit = "random_init"

        public var label: String {
            switch self {
            case .dense: return "dense"
            case .denseWithAbsTopK: return "dense with AbsTopK"
            case .sparse: return "sparse"
            case .randomInit: return "random init (control)"
            }
        }
    }

    public var role: Role {
        if randomInit { return .randomInit }
        if density < 1 { return .sparse }
        return afrac >= 1 ? .dense : .denseWithAbsTopK
    }

    /// Density 1, whatever its activations (the baseline is `role == .dense`).
    public var isDense: Bool { density >= 1 }

    /// Stable, file-name-safe identity, e.g. `d0.0625-w128-a0.25-s0` (the plan's model name).
    public var identifier: String {
        "d\(ReportFormat.number(density))-w\(dModel)-a\(ReportFormat.number(afrac))-s\(seed)" + (randomInit ? "-random-init" : "")
    }

    public var label: String {
        switch role {
        case .dense: return "d_model \(dModel), dense"
        case .denseWithAbsTopK: return "d_model \(dModel), dense with AbsTopK \(ReportFormat.number(afrac))"
        case .sparse: return "d_model \(dModel), density \(ReportFormat.number(density)), afrac \(ReportFormat.number(afrac))"
        case .randomInit: return "d_model \(dModel), density \(ReportFormat.number(density)), afrac \(ReportFormat.number(afrac)), random init"
        }
    }

    /// A sparse model in a table column: width @ density (AbsTopK fraction), e.g. `256 @ 0.0625 (afrac 0.25)`.
    public var shortLabel: String {
        "\(dModel) @ \(ReportFormat.number(density)) (afrac \(ReportFormat.number(afrac)))"
    }

    /// The label of its point on the frontier plot, where the width is the series.
    public var pointLabel: String {
        switch role {
        case .dense: return "dense"
        case .denseWithAbsTopK: return "dense with AbsTopK"
        case .sparse, .randomInit: return "d=\(ReportFormat.number(density))"
        }
    }

    /// Same density, width and afrac: a control and the trained models it controls for.
    func sameShape(as other: ReportModel) -> Bool {
        density == other.density && dModel == other.dModel && afrac == other.afrac
    }

    func sameIdentity(as other: ReportModel) -> Bool { identifier == other.identifier }
}

/// One point of a (model, task) circuit-size curve: the smallest circuit found for one target loss.
public struct ReportCircuit: Codable, Sendable {
    /// How the pruning ended for one target.
    public enum Status: String, Codable, Sendable {
        case reachable
        /// No λ reached the target: the circuit has no size.
        case unreachable
        /// The masks collapsed and bisection fell back to (nearly) the whole model: its size says
        /// nothing about a circuit, so it counts like an unreachable one.
        case collapsed
    }

    public var modelID: String
    public var task: String
    public var target: Double
    public var status: Status
    public var reachedLoss: Double?
    public var nodes: Int?
    public var edges: Int?
    /// Task loss of the full model on the test pairs.
    public var fullLoss: Double?
    /// Task loss of the full model with only the circuit's nodes ablated (the necessity control);
    /// nil when the pruner did not measure it.
    public var necessityLoss: Double?
    /// The circuit's own JSON document (as the pruner exports it), when the pruning kept it.
    public var circuitJSON: Data?

    public init(modelID: String, task: String, target: Double, reachable: Bool, status: Status? = nil,
                reachedLoss: Double? = nil, nodes: Int? = nil, edges: Int? = nil, fullLoss: Double? = nil,
                necessityLoss: Double? = nil, circuitJSON: Data? = nil) {
        self.modelID = modelID
        self.task = task
        self.target = target
        self.status = status ?? (reachable ? .reachable : .unreachable)
        self.reachedLoss = reachedLoss
        self.nodes = nodes
        self.edges = edges
        self.fullLoss = fullLoss
        self.necessityLoss = necessityLoss
        self.circuitJSON = circuitJSON
    }

    /// Reached the target with a size that counts: collapsed circuits do not.
    public var reachable: Bool {
        get { status == .reachable }
        set { status = newValue ? .reachable : .unreachable }
    }

    /// The size in edges, only when it counts as a circuit's size.
    public var countedEdges: Int? { reachable ? edges : nil }

    /// "unreachable", "collapsed", or the edge count.
    public var sizeText: String {
        switch status {
        case .reachable: return edges.map(String.init) ?? ""
        case .unreachable: return "unreachable"
        case .collapsed: return "collapsed"
        }
    }
}

/// A shard's state, for the table of shards and their failures.
public struct ReportShard: Codable, Sendable {
    public var id: String
    public var kind: String
    public var state: String
    public var attempts: Int
    public var error: String?

    public init(id: String, kind: String, state: String, attempts: Int, error: String? = nil) {
        self.id = id
        self.kind = kind
        self.state = state
        self.attempts = attempts
        self.error = error
    }
}

/// Everything a report is made from; read from a run's store, finished or still running.
public struct ReportData: Sendable {
    public var sweepName: String
    public var models: [ReportModel]
    public var circuits: [ReportCircuit]
    public var shards: [ReportShard]
    /// The target loss of the headline numbers (0.15 by default).
    public var headlineTarget: Double

    public init(sweepName: String, models: [ReportModel], circuits: [ReportCircuit], shards: [ReportShard],
                headlineTarget: Double = 0.15) {
        self.sweepName = sweepName
        self.models = models
        self.circuits = circuits
        self.shards = shards
        self.headlineTarget = headlineTarget
    }

    public var tasks: [String] { Array(Set(circuits.map(\.task))).sorted() }

    /// The trained models (every role but the random-init controls).
    public var trainedModels: [ReportModel] { models.filter { !$0.randomInit } }

    public var controlModels: [ReportModel] { models.filter(\.randomInit) }

    /// The model's circuit for `task` at the headline target.
    func headlineCircuit(of model: ReportModel, task: String) -> ReportCircuit? {
        headlineCircuits(of: model).first { $0.task == task }
    }

    func circuits(of model: ReportModel) -> [ReportCircuit] {
        let id = model.identifier
        return circuits.filter { $0.modelID == id }
    }

    /// The model's circuits at the headline target loss, one per task.
    func headlineCircuits(of model: ReportModel) -> [ReportCircuit] {
        circuits(of: model).filter { isHeadline($0) }
    }

    func isHeadline(_ circuit: ReportCircuit) -> Bool { abs(circuit.target - headlineTarget) < 1e-9 }
}

enum ReportFormat {
    /// Short, exact-looking numbers: 0.0625, 1, 0.25, 3.4e-05.
    static func number(_ x: Double) -> String {
        if x == x.rounded(), abs(x) < 1e9 { return String(Int(x)) }
        var s = String(format: "%.6g", x)
        if s.contains("e") { return s }
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s
    }

    /// 16×, 2.5×, 0.031×: the ratio stays readable when sparse circuits come out larger.
    static func ratio(_ x: Double) -> String {
        x >= 10 ? String(format: "%.0f×", x) : x >= 1 ? String(format: "%.1f×", x) : String(format: "%.2g×", x)
    }

    static func loss(_ x: Double?) -> String { x.map { String(format: "%.4f", $0) } ?? "" }

    static func edges(_ x: Double?) -> String {
        guard let x else { return "" }
        return x >= 100 ? String(format: "%.0f", x) : String(format: "%.1f", x)
    }
}
