import Foundation
import SparseGPT

/// Everything `circuitry prune` asks for: a model, task pairs, where the node means come from,
/// the frontier settings and the headline target.
public struct PruneRequest {
    public var modelPath: String
    /// Pairs file (see `TaskPairsFile`).
    public var pairsPath: String
    /// Tasks to prune; empty means every task in the pairs file.
    public var tasks: [String] = []
    /// Held-out corpus tokens (flat little-endian uint16) the node means are taken over.
    public var heldOutTokensPath: String?
    /// Node means file: read if it matches the model and tokens, else written (see `NodeMeansFile`).
    public var meansPath: String?
    public var meanWindows = 256
    /// The circuit reported and written as `<task>.circuit.json`; added to the frontier's targets.
    public var target: Float = 0.15
    public var settings = FrontierSettings()
    public var outputDirectory = "circuits"
    public var workers = 2

    public init(modelPath: String, pairsPath: String) {
        self.modelPath = modelPath
        self.pairsPath = pairsPath
    }
}

/// One pruned task: its frontier, the circuit at the headline target and the files written.
public struct PruneOutcome {
    public let frontier: Frontier
    public let circuit: CircuitDocument
    public let circuitPath: String
    public let frontierPath: String

    /// A few lines for a terminal: the circuit's size per location, or why there is none.
    public var summary: String {
        let c = circuit
        var lines = ["task \(c.task): full-model task loss \(format(c.fullLoss)), target \(format(c.target))"]
        if c.reachable, let locations = c.locations {
            lines.append("  circuit: \(c.nodeCount!) of \(c.totalNodes) nodes, \(c.edgeCount!) edges, task loss \(format(c.reachedLoss!)) (λ \(c.lambda!))")
            let perLocation = locations.filter { !$0.kept.isEmpty }.map { "\($0.name) \($0.kept.count)/\($0.size)" }
            lines.append("  kept: " + (perLocation.isEmpty ? "none" : perLocation.joined(separator: ", ")))
        } else {
            lines.append("  unreachable: no λ reached task loss \(format(c.target)) (the full model has \(format(c.fullLoss)))")
        }
        let curve = frontier.points.map { p in "\(format(p.target)): " + (p.circuit.map { "\($0.edgeCount) edges" } ?? "unreachable") }
        lines.append("  frontier: " + curve.joined(separator: ", ") + String(format: " (%.1f s)", frontier.seconds))
        lines.append("  wrote \(circuitPath) and \(frontierPath)")
        return lines.joined(separator: "\n")
    }

    private func format(_ x: Float) -> String { String(format: "%.4g", Double(x)) }
}

/// Prunes every requested task of a model: loads it once, computes (or reads) its node means once,
/// runs each task's frontier, and writes `<task>.circuit.json` and `<task>.frontier.json`.
public func runPrune(_ request: PruneRequest, progress: ((String) -> Void)? = nil) throws -> [PruneOutcome] {
    var settings = request.settings
    if !settings.targets.contains(request.target) { settings.targets.append(request.target) }
    settings.targets.sort()
    try settings.validate()

    let all = try TaskPairsFile.load(URL(fileURLWithPath: request.pairsPath))
    let chosen: [TaskData]
    if request.tasks.isEmpty {
        chosen = all
    } else {
        chosen = try request.tasks.map { name in
            guard let found = all.first(where: { $0.task == name }) else {
                throw CircuitError.invalidPairs("\(request.pairsPath) has no task \(name) (it has: \(all.map(\.task).joined(separator: ", ")))")
            }
            return found
        }
    }

    let session = try PruneSession(modelPath: request.modelPath, workers: request.workers)
    if let tokensPath = request.heldOutTokensPath {
        try session.computeMeans(heldOut: readTokenFile(tokensPath), windows: request.meanWindows, cachePath: request.meansPath)
    } else if let meansPath = request.meansPath {
        try session.setMeans(NodeMeansFile.read(meansPath).means)
    } else {
        throw CircuitError.invalidSettings("node means need held-out tokens or a means file")
    }

    try FileManager.default.createDirectory(atPath: request.outputDirectory, withIntermediateDirectories: true)
    let lock = NSLock()
    return try chosen.map { data in
        let frontier = try session.frontier(data, settings: settings) { lambda, step in
            guard step.step % 100 == 0 else { return }
            lock.lock()
            progress?("\(data.task) λ \(lambda) step \(step.step): task loss \(step.taskLoss), kept \(step.keptNodes)")
            lock.unlock()
        }
        let candidates = data.test.candidateTokens
        let circuit = CircuitDocument(point: frontier.point(at: request.target)!, task: data.task, fullLoss: frontier.fullLoss,
                                      layout: session.layout, means: session.means!, candidateTokens: candidates,
                                      model: request.modelPath)
        let base = (request.outputDirectory as NSString).appendingPathComponent(data.task)
        let circuitPath = base + ".circuit.json", frontierPath = base + ".frontier.json"
        try circuit.jsonData().write(to: URL(fileURLWithPath: circuitPath))
        try FrontierDocument(frontier: frontier, layout: session.layout, means: session.means!, candidateTokens: candidates,
                             model: request.modelPath).jsonData().write(to: URL(fileURLWithPath: frontierPath))
        return PruneOutcome(frontier: frontier, circuit: circuit, circuitPath: circuitPath, frontierPath: frontierPath)
    }
}
