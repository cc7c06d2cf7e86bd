import Foundation

public enum ReportError: Error, CustomStringConvertible {
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotWrite(path, reason): return "cannot write report file \(path): \(reason)"
        }
    }
}

/// Writes a run's report: frontier.csv, frontier.json, models.csv, training_curves.csv,
/// circuits/*.json and a page per circuit (circuits/*.html), index.html.
public struct ReportWriter {
    public let data: ReportData
    public let details: ReportDetails

    public init(data: ReportData, details: ReportDetails = ReportDetails()) {
        self.data = data
        self.details = details
    }

    /// Writes every file into `directory` (created when missing) and returns the paths written.
    @discardableResult
    public func write(to directory: URL) throws -> [URL] {
        let fm = FileManager.default
        let circuitsDir = directory.appendingPathComponent("circuits")
        do {
            try fm.createDirectory(at: circuitsDir, withIntermediateDirectories: true)
        } catch {
            throw ReportError.cannotWrite(path: circuitsDir.path, reason: error.localizedDescription)
        }
        var written: [URL] = []
        func put(_ name: String, _ contents: Data, in dir: URL = directory) throws {
            let url = dir.appendingPathComponent(name)
            do { try contents.write(to: url, options: .atomic) } catch {
                throw ReportError.cannotWrite(path: url.path, reason: error.localizedDescription)
            }
            written.append(url)
        }
        try put("frontier.csv", Data(frontierCSV().utf8))
        try put("frontier.json", try frontierJSON())
        try put("models.csv", Data(modelsCSV().utf8))
        if !details.trainingCurves.isEmpty { try put("training_curves.csv", Data(trainingCurvesCSV().utf8)) }
        for (model, circuit) in HTMLReport(data: data).circuitPages() {
            let key = ReportDetails.circuitKey(modelID: model.identifier, task: circuit.task)
            try put("\(key).json", circuit.circuitJSON!, in: circuitsDir)
            let page = try CircuitPage(model: model, circuit: circuit, analysis: details.analyses[key], sweepName: data.sweepName).render()
            try put("\(key).html", Data(page.utf8), in: circuitsDir)
        }
        try put("index.html", Data(HTMLReport(data: data, details: details).render().utf8))
        return written
    }

    static let frontierColumns = ["density", "embed_density", "d_model", "afrac", "seed", "task", "pretrain_loss",
                                  "target", "reached_loss", "nodes", "edges", "reachable", "status", "full_loss",
                                  "necessity_loss", "role"]

    /// One row per model × task × target loss, models in sweep order.
    func frontierRows() -> [(ReportModel, ReportCircuit)] {
        data.models.flatMap { model in
            data.circuits(of: model)
                .sorted { ($0.task, $0.target) < ($1.task, $1.target) }
                .map { (model, $0) }
        }
    }

    public func frontierCSV() -> String {
        var lines = [Self.frontierColumns.joined(separator: ",")]
        for (m, c) in frontierRows() {
            var fields = modelFields(m)
            fields += [csvField(c.task), optional(m.pretrainLoss), ReportFormat.number(c.target), optional(c.reachedLoss)]
            fields += [optional(c.nodes), optional(c.edges), c.reachable ? "true" : "false", c.status.rawValue]
            fields += [optional(c.fullLoss), optional(c.necessityLoss), m.role.rawValue]
            lines.append(fields.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public func frontierJSON() throws -> Data {
        struct Row: Encodable {
            var density, embed_density: Double
            var d_model: Int
            var afrac: Double
            var seed: Int
            var task: String
            var pretrain_loss: Double?
            var target: Double
            var reached_loss: Double?
            var nodes, edges: Int?
            var reachable: Bool
            var status: String
            var full_loss, necessity_loss: Double?
            var role: String

            // Absent values are written as null, so every row has every column.
            func encode(to encoder: Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(density, forKey: .density); try c.encode(embed_density, forKey: .embed_density)
                try c.encode(d_model, forKey: .d_model); try c.encode(afrac, forKey: .afrac); try c.encode(seed, forKey: .seed)
                try c.encode(task, forKey: .task); try c.encode(pretrain_loss, forKey: .pretrain_loss)
                try c.encode(target, forKey: .target); try c.encode(reached_loss, forKey: .reached_loss)
                try c.encode(nodes, forKey: .nodes); try c.encode(edges, forKey: .edges)
                try c.encode(reachable, forKey: .reachable); try c.encode(status, forKey: .status)
                try c.encode(full_loss, forKey: .full_loss); try c.encode(necessity_loss, forKey: .necessity_loss)
                try c.encode(role, forKey: .role)
            }

            enum CodingKeys: String, CodingKey {
                case density, embed_density, d_model, afrac, seed, task, pretrain_loss, target, reached_loss, nodes, edges
                case reachable, status, full_loss, necessity_loss, role
            }
        }
        let rows = frontierRows().map { m, c in
            Row(density: m.density, embed_density: m.embedDensity, d_model: m.dModel, afrac: m.afrac, seed: m.seed,
                task: c.task, pretrain_loss: m.pretrainLoss, target: c.target, reached_loss: c.reachedLoss,
                nodes: c.nodes, edges: c.edges, reachable: c.reachable, status: c.status.rawValue, full_loss: c.fullLoss,
                necessity_loss: c.necessityLoss, role: m.role.rawValue)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(rows)
    }

    public func modelsCSV() -> String {
        let points = Dictionary(SweepFrontier.points(data).map { ($0.model.identifier, $0) }, uniquingKeysWith: { a, _ in a })
        let target = ReportFormat.number(data.headlineTarget)
        var lines = ["density,embed_density,d_model,afrac,seed,pretrain_loss,nonzero_weights,geomean_edges_at_\(target),tasks_reached,tasks_total,role"]
        for m in data.models {
            let p = points[m.identifier]
            let atTarget = data.headlineCircuits(of: m)
            var fields = modelFields(m)
            fields += [optional(m.pretrainLoss), optional(m.nonzeroWeights), optional(p?.geometricMeanEdges)]
            fields += [String(atTarget.filter(\.reachable).count), String(atTarget.count), m.role.rawValue]
            lines.append(fields.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Every model's training curve, one row per recorded step.
    public func trainingCurvesCSV() -> String {
        var lines = [(["density", "embed_density", "d_model", "afrac", "seed"] + TrainingCurve.columns).joined(separator: ",")]
        for m in data.models {
            guard let curve = details.trainingCurves[m.identifier] else { continue }
            let prefix = modelFields(m).joined(separator: ",")
            lines += curve.csv().split(separator: "\n").dropFirst().map { prefix + "," + $0 }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func modelFields(_ m: ReportModel) -> [String] {
        [ReportFormat.number(m.density), ReportFormat.number(m.embedDensity), String(m.dModel),
         ReportFormat.number(m.afrac), String(m.seed)]
    }

    private func optional<T: LosslessStringConvertible>(_ x: T?) -> String { x.map { String($0) } ?? "" }

    private func csvField(_ s: String) -> String {
        s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
}

/// The report of a run as `run`, `coordinator` and `status` show it: the headline table and where
/// the report files are.
public enum RunReport {
    public static func directory(of runDirectory: URL) -> URL { RunDirectory(runDirectory).report }

    /// Writes the report into `out` (default RUN_DIR/report) and returns the headline table and its location.
    public static func write(runDirectory: URL, to out: URL? = nil) throws -> String {
        try writeOnce(runDirectory: runDirectory, to: out ?? directory(of: runDirectory)).text
    }

    private static func writeOnce(runDirectory: URL, to out: URL) throws -> (text: String, running: Bool) {
        let data = try ReportData.load(runDirectory: runDirectory)
        let details = try ReportDetails.load(runDirectory: runDirectory)
        try ReportWriter(data: data, details: details).write(to: out)
        var text = HeadlineText.render(data)
        for problem in details.problems { text += "warning: \(problem)\n" }
        return (text + "report: \(out.appendingPathComponent("index.html").path)\n", details.running)
    }

    /// Rewrites the report every `seconds` while the sweep runs, and once more when it has ended;
    /// `onWrite` gets each report's text.
    public static func watch(runDirectory: URL, to out: URL? = nil, every seconds: Double, onWrite: (String) -> Void) throws {
        let target = out ?? directory(of: runDirectory)
        while true {
            let (text, running) = try writeOnce(runDirectory: runDirectory, to: target)
            onWrite(text)
            guard running else { return }
            Thread.sleep(forTimeInterval: seconds)
        }
    }

    /// The headline table from the store, and where the report was last written (nothing is written).
    public static func summary(runDirectory: URL) throws -> String {
        let data = try ReportData.load(runDirectory: runDirectory)
        let page = directory(of: runDirectory).appendingPathComponent("index.html")
        let location = FileManager.default.fileExists(atPath: page.path)
            ? "report: \(page.path) (refresh with `circuitry report \(runDirectory.path)`)"
            : "no report yet: `circuitry report \(runDirectory.path)` writes one"
        return HeadlineText.render(data) + location + "\n"
    }
}
