import Foundation

/// One trained model of a sweep, as the report sees it.
public struct ReportModel: Hashable, Codable, Sendable {
    public var density: Double
    public var embedDensity: Double
    public var dModel: Int
    public var afrac: Double
    public var seed: Int
    /// Held-out next-token loss; nil while the model is not trained yet.
    public var pretrainLoss: Double?
    public var nonzeroWeights: Int?

    public init(density: Double, embedDensity: Double, dModel: Int, afrac: Double, seed: Int,
                pretrainLoss: Double? = nil, nonzeroWeights: Int? = nil) {
        self.density = density
        self.embedDensity = embedDensity
        self.dModel = dModel
        self.afrac = afrac
        self.seed = seed
        self.pretrainLoss = pretrainLoss
        self.nonzeroWeights = nonzeroWeights
    }

    public var isDense: Bool { density >= 1 }

    /// Stable, file-name-safe identity, e.g. `d0.0625-w128-a0.25-s0`.
    public var identifier: String {
        "d\(ReportFormat.number(density))-w\(dModel)-a\(ReportFormat.number(afrac))-s\(seed)"
    }

    public var label: String { "d_model \(dModel), density \(ReportFormat.number(density))" }

    func sameIdentity(as other: ReportModel) -> Bool { identifier == other.identifier }
}

/// One point of a (model, task) circuit-size curve: the smallest circuit found for one target loss.
public struct ReportCircuit: Codable, Sendable {
    public var modelID: String
    public var task: String
    public var target: Double
    /// False when no λ reached the target: such a circuit has no size.
    public var reachable: Bool
    public var reachedLoss: Double?
    public var nodes: Int?
    public var edges: Int?
    /// The circuit's own JSON document (as the pruner exports it), when the pruning kept it.
    public var circuitJSON: Data?

    public init(modelID: String, task: String, target: Double, reachable: Bool,
                reachedLoss: Double? = nil, nodes: Int? = nil, edges: Int? = nil, circuitJSON: Data? = nil) {
        self.modelID = modelID
        self.task = task
        self.target = target
        self.reachable = reachable
        self.reachedLoss = reachedLoss
        self.nodes = nodes
        self.edges = edges
        self.circuitJSON = circuitJSON
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
