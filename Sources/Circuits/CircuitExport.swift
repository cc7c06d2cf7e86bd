import Foundation
import SparseGPT

/// The JSON a user opens to read a circuit: task, target, reached loss, node and edge counts, for
/// every location the kept nodes with their means, and every edge with its weight. A target that
/// no λ reached is written with `"reachable": false` and no sizes.
public struct CircuitDocument: Codable, Equatable, Sendable {
    public struct KeptNode: Codable, Equatable, Sendable {
        public let index: Int
        /// The node's mean over the pretraining distribution (its value when ablated).
        public let mean: Float
    }

    public struct Location: Codable, Equatable, Sendable {
        public let name: String
        public let size: Int
        public let kept: [KeptNode]
    }

    public struct TraceEntry: Codable, Equatable, Sendable {
        public let k: Int
        public let loss: Float
    }

    public let task: String
    public let model: String?
    public let target: Float
    public let reachable: Bool
    /// Task loss of the unpruned model on the test pairs.
    public let fullLoss: Float
    public let lambda: Float?
    /// Task loss on the test pairs with only the circuit kept.
    public let reachedLoss: Float?
    public let nodeCount: Int?
    public let edgeCount: Int?
    public let totalNodes: Int
    public let candidateTokens: [Int]
    public let locations: [Location]?
    public let edges: [EdgeGroup]?
    public let bisection: [TraceEntry]?

    enum CodingKeys: String, CodingKey {
        case task, model, target, reachable, lambda, locations, edges, bisection
        case fullLoss = "full_loss", reachedLoss = "reached_loss", nodeCount = "node_count", edgeCount = "edge_count"
        case totalNodes = "total_nodes", candidateTokens = "candidate_tokens"
    }

    /// The document of `point` of a frontier; `means` are the node means in global order.
    public init(point: Frontier.Point, task: String, fullLoss: Float, layout: NodeLayout, means: [Float],
                candidateTokens: [Int], model: String? = nil) {
        self.task = task
        self.model = model
        self.target = point.target
        self.fullLoss = fullLoss
        self.totalNodes = layout.count
        self.candidateTokens = candidateTokens
        guard let circuit = point.circuit else {
            reachable = false
            lambda = nil; reachedLoss = nil; nodeCount = nil; edgeCount = nil
            locations = nil; edges = nil; bisection = nil
            return
        }
        reachable = true
        lambda = circuit.lambda
        reachedLoss = circuit.loss
        nodeCount = circuit.nodeCount
        edgeCount = circuit.edgeCount
        locations = layout.locations.map { location in
            Location(name: location.name, size: location.size,
                     kept: location.range.filter { circuit.keep[$0] }.map { KeptNode(index: $0 - location.offset, mean: means[$0]) })
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
        public let seconds: Double
        public let finalTrainLoss: Float
        /// The trained circuit: nodes with τ > 0 at the end of training, its test task loss and edges.
        public let trainedNodes: Int
        public let trainedLoss: Float
        public let trainedEdges: Int
        /// Edge count per target reached by this λ (targets it missed are absent).
        public let edgesAtTarget: [String: Int]

        enum CodingKeys: String, CodingKey {
            case lambda, seconds
            case finalTrainLoss = "final_train_loss", trainedNodes = "trained_nodes", trainedLoss = "trained_loss"
            case trainedEdges = "trained_edges", edgesAtTarget = "edges_at_target"
        }
    }

    public let task: String
    public let model: String?
    public let fullLoss: Float
    public let seconds: Double
    public let points: [CircuitDocument]
    public let runs: [LambdaRun]

    enum CodingKeys: String, CodingKey {
        case task, model, seconds, points, runs
        case fullLoss = "full_loss"
    }

    public init(frontier: Frontier, layout: NodeLayout, means: [Float], candidateTokens: [Int], model: String? = nil) {
        task = frontier.task
        self.model = model
        fullLoss = frontier.fullLoss
        seconds = frontier.seconds
        points = frontier.points.map {
            CircuitDocument(point: $0, task: frontier.task, fullLoss: frontier.fullLoss, layout: layout, means: means,
                            candidateTokens: candidateTokens, model: model)
        }
        runs = frontier.runs.map { run in
            LambdaRun(lambda: run.lambda, seconds: run.seconds, finalTrainLoss: run.finalTrainLoss,
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
