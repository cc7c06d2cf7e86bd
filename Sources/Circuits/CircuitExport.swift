import Foundation
import SparseGPT

/// The JSON a user opens to read a circuit: task, model, target, status, reached loss, node and
/// edge counts, for every location the kept nodes with their means (and attention heads), and
/// every edge with its weight. A target with no circuit is written with its `status`
/// (`unreachable`, or `collapsed` when only circuits of most of the model reached it),
/// `"reachable": false` and no sizes.
public struct CircuitDocument: Codable, Equatable, Sendable {
    public struct KeptNode: Codable, Equatable, Sendable {
        public let index: Int
        /// The node's mean over the pretraining distribution (its value when ablated).
        public let mean: Float
        /// For q, k and v channels: the attention head (channel / d_head).
        public let head: Int?
    }

    public struct Location: Codable, Equatable, Sendable {
        public let name: String
        public let size: Int
        public let kept: [KeptNode]
        /// For q, k and v: the heads with a kept channel, ascending.
        public let heads: [Int]?
    }

    public struct TraceEntry: Codable, Equatable, Sendable {
        public let k: Int
        public let loss: Float
    }

    public let task: String
    /// The model's identifier as the caller names it (a sweep's model point, or the checkpoint path).
    public let model: String?
    public let target: Float
    /// Always written; absent only in documents that predate it (their `reachable` says as much).
    public let status: CircuitStatus?
    /// True exactly when `status` is reachable (kept for readers that predate `status`).
    public let reachable: Bool
    /// Task loss of the unpruned model on the test pairs.
    public let fullLoss: Float
    /// The same, calibrated as the circuits are; absent without calibration.
    public let calibratedFullLoss: Float?
    public let lambda: Float?
    /// Task loss on the test pairs with only the circuit kept (calibrated when `calibration` is present).
    public let reachedLoss: Float?
    /// The fitted scale and shift of the candidate logit difference the circuit was scored with.
    public let calibration: LogitCalibration?
    /// Task loss on the test pairs with only the circuit's nodes ablated, scored the same way.
    public let necessityLoss: Float?
    /// The same uncalibrated, when the circuit is calibrated.
    public let uncalibratedNecessityLoss: Float?
    public let nodeCount: Int?
    public let edgeCount: Int?
    /// When collapsed: the nodes of the smallest collapsed circuit (not a circuit size).
    public let collapsedNodeCount: Int?
    public let totalNodes: Int
    public let candidateTokens: [Int]
    /// The candidate tokens as text, beside `candidate_tokens`, when the caller has the tokenizer.
    public let candidateTexts: [String]?
    public let locations: [Location]?
    public let edges: [EdgeGroup]?
    public let bisection: [TraceEntry]?

    enum CodingKeys: String, CodingKey {
        case task, model, target, status, reachable, lambda, calibration, locations, edges, bisection
        case fullLoss = "full_loss", calibratedFullLoss = "calibrated_full_loss", reachedLoss = "reached_loss"
        case necessityLoss = "necessity_loss", uncalibratedNecessityLoss = "uncalibrated_necessity_loss", nodeCount = "node_count", edgeCount = "edge_count"
        case collapsedNodeCount = "collapsed_node_count"
        case totalNodes = "total_nodes", candidateTokens = "candidate_tokens", candidateTexts = "candidate_texts"
    }

    /// The document of `point` of a frontier; `means` are the node means in global order; `dHead`
    /// names the attention head of q/k/v channels.
    public init(point: Frontier.Point, task: String, fullLoss: Float, calibratedFullLoss: Float? = nil,
                layout: NodeLayout, means: [Float], candidateTokens: [Int], candidateTexts: [String]? = nil,
                dHead: Int? = nil, model: String? = nil) {
        self.task = task
        self.model = model
        self.target = point.target
        self.status = point.status
        self.fullLoss = fullLoss
        self.calibratedFullLoss = calibratedFullLoss
        self.totalNodes = layout.count
        self.candidateTokens = candidateTokens
        self.candidateTexts = candidateTexts
        collapsedNodeCount = point.collapsedCircuit?.nodeCount
        guard let circuit = point.circuit else {
            reachable = false
            lambda = nil; reachedLoss = nil; calibration = nil; necessityLoss = nil; uncalibratedNecessityLoss = nil; nodeCount = nil; edgeCount = nil
            locations = nil; edges = nil; bisection = nil
            return
        }
        reachable = true
        lambda = circuit.lambda
        reachedLoss = circuit.loss
        calibration = circuit.calibration
        necessityLoss = point.necessityLoss
        uncalibratedNecessityLoss = point.uncalibratedNecessityLoss
        nodeCount = circuit.nodeCount
        edgeCount = circuit.edgeCount
        // Only q, k and v channels belong to heads; attention output channels come after
        // attn.c_proj, in the residual basis.
        let headed: [NodeKind] = [.q, .k, .v]
        locations = layout.locations.map { location in
            let byHead = dHead.flatMap { $0 > 0 && location.kind.map(headed.contains) == true ? $0 : nil }
            let kept = location.range.filter { circuit.keep[$0] }.map { i in
                KeptNode(index: i - location.offset, mean: means[i], head: byHead.map { (i - location.offset) / $0 })
            }
            return Location(name: location.name, size: location.size, kept: kept,
                            heads: byHead.map { _ in Array(Set(kept.compactMap(\.head))).sorted() })
        }
        edges = circuit.edges
        bisection = circuit.trace.map { TraceEntry(k: $0.k, loss: $0.loss) }
    }

    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }
}

/// The JSON of a whole frontier: one circuit document per target, and what each λ did.
public struct FrontierDocument: Codable, Equatable, Sendable {
    public struct LambdaRun: Codable, Equatable, Sendable {
        public let lambda: Float
        /// 0 for the first τ initialisation; higher for extra initialisations and collapse retries.
        public let initialization: Int
        public let seconds: Double
        public let finalTrainLoss: Float
        /// The trained circuit: nodes with τ > 0 at the end of training, its test task loss and edges.
        public let trainedNodes: Int
        public let trainedLoss: Float
        public let trainedEdges: Int
        /// Edge count per target reached by this run, collapsed circuits included (targets it missed
        /// are absent); the points say which circuits count.
        public let edgesAtTarget: [String: Int]

        enum CodingKeys: String, CodingKey {
            case lambda, initialization, seconds
            case finalTrainLoss = "final_train_loss", trainedNodes = "trained_nodes", trainedLoss = "trained_loss"
            case trainedEdges = "trained_edges", edgesAtTarget = "edges_at_target"
        }
    }

    public let task: String
    public let model: String?
    public let fullLoss: Float
    /// Circuits of more nodes than this are collapsed.
    public let collapseNodes: Int
    public let seconds: Double
    public let points: [CircuitDocument]
    public let runs: [LambdaRun]

    enum CodingKeys: String, CodingKey {
        case task, model, seconds, points, runs
        case fullLoss = "full_loss", collapseNodes = "collapse_nodes"
    }

    public init(frontier: Frontier, layout: NodeLayout, means: [Float], candidateTokens: [Int],
                candidateTexts: [String]? = nil, dHead: Int? = nil, model: String? = nil) {
        task = frontier.task
        self.model = model
        fullLoss = frontier.fullLoss
        collapseNodes = frontier.collapseNodes
        seconds = frontier.seconds
        points = frontier.points.map {
            CircuitDocument(point: $0, task: frontier.task, fullLoss: frontier.fullLoss,
                            calibratedFullLoss: frontier.calibratedFullLoss, layout: layout, means: means,
                            candidateTokens: candidateTokens, candidateTexts: candidateTexts, dHead: dHead, model: model)
        }
        runs = frontier.runs.map { run in
            LambdaRun(lambda: run.lambda, initialization: run.initialization, seconds: run.seconds, finalTrainLoss: run.finalTrainLoss,
                      trainedNodes: run.trainedNodes, trainedLoss: run.trainedLoss, trainedEdges: run.trainedEdges,
                      edgesAtTarget: Dictionary(uniqueKeysWithValues: run.circuits.map { ("\($0.key)", $0.value.edgeCount) }))
        }
    }

    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }
}
