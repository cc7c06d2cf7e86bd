import Foundation

public enum ReportError: Error, CustomStringConvertible {
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotWrite(path, reason): return "cannot write report file \(path): \(reason)"
        }
    }
}

/// Writes a run's report: frontier.csv, frontier.json, models.csv, circuits/*.json, index.html.
public struct ReportWriter {
    public let data: ReportData

    public init(data: ReportData) { self.data = data }

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
        for circuit in data.circuits where data.isHeadline(circuit) {
            guard let json = circuit.circuitJSON else { continue }
            try put("\(circuit.modelID)__\(circuit.task).json", json, in: circuitsDir)
        }
        try put("index.html", Data(HTMLReport(data: data).render().utf8))
        return written
    }

    static let frontierColumns = ["density", "embed_density", "d_model", "afrac", "seed", "task", "pretrain_loss",
                                  "target", "reached_loss", "nodes", "edges", "reachable"]

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
            fields += [optional(c.nodes), optional(c.edges), c.reachable ? "true" : "false"]
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
        }
        let rows = frontierRows().map { m, c in
            Row(density: m.density, embed_density: m.embedDensity, d_model: m.dModel, afrac: m.afrac, seed: m.seed,
                task: c.task, pretrain_loss: m.pretrainLoss, target: c.target, reached_loss: c.reachedLoss,
                nodes: c.nodes, edges: c.edges, reachable: c.reachable)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(rows)
    }

    public func modelsCSV() -> String {
        let points = Dictionary(SweepFrontier.points(data).map { ($0.model.identifier, $0) }, uniquingKeysWith: { a, _ in a })
        let target = ReportFormat.number(data.headlineTarget)
        var lines = ["density,embed_density,d_model,afrac,seed,pretrain_loss,nonzero_weights,geomean_edges_at_\(target),tasks_reached,tasks_total"]
        for m in data.models {
            let p = points[m.identifier]
            let atTarget = data.headlineCircuits(of: m)
            var fields = modelFields(m)
            fields += [optional(m.pretrainLoss), optional(m.nonzeroWeights), optional(p?.geometricMeanEdges)]
            fields += [String(atTarget.filter(\.reachable).count), String(atTarget.count)]
            lines.append(fields.joined(separator: ","))
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

/// The headline numbers as a plain-text table, for `circuitry status` and the end of `circuitry run`.
public enum HeadlineText {
    public static func render(_ data: ReportData) -> String {
        let points = SweepFrontier.points(data)
        let headline = SweepFrontier.headline(data)
        let target = ReportFormat.number(data.headlineTarget)
        var out = "Circuit edges at task loss \(target) (geometric mean over tasks reached):\n"
        if points.isEmpty {
            return out + "  no circuits yet\n"
        }
        let header = ["d_model", "density", "pretrain loss", "edges", "tasks", "pareto"]
        var rows = points.sorted { ($0.model.dModel, -$0.model.density) < ($1.model.dModel, -$1.model.density) }.map { p in
            [String(p.model.dModel), ReportFormat.number(p.model.density), ReportFormat.loss(p.pretrainLoss),
             ReportFormat.edges(p.geometricMeanEdges), "\(p.tasksReached)/\(p.tasksTotal)", p.isPareto ? "*" : ""]
        }
        rows.insert(header, at: 0)
        out += table(rows)
        if let ratio = headline.ratio {
            out += "Dense/sparse circuit edges at matched pretraining loss: " + ReportFormat.ratio(ratio)
            out += headline.interpolated ? " (interpolated along the dense frontier" : " (nearest dense model: the losses do not overlap"
            out += headline.tasks.isEmpty ? "; no task reached by every model)\n"
                                          : "; over the \(headline.tasks.count) tasks every model reached)\n"
        } else {
            out += "Dense/sparse ratio: needs at least one dense and one sparse model with circuits\n"
        }
        return out
    }

    static func table(_ rows: [[String]]) -> String {
        let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max() ?? 0 }
        return rows.map { row in
            "  " + zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n") + "\n"
    }
}

/// The report of a run as `run`, `coordinator` and `status` show it: the headline table and where
/// the report files are.
public enum RunReport {
    public static func directory(of runDirectory: URL) -> URL { RunDirectory(runDirectory).report }

    /// Writes the report into RUN_DIR/report and returns the headline table and its location.
    public static func write(runDirectory: URL) throws -> String {
        let data = try ReportData.load(runDirectory: runDirectory)
        let out = directory(of: runDirectory)
        try ReportWriter(data: data).write(to: out)
        return HeadlineText.render(data) + "report: \(out.appendingPathComponent("index.html").path)\n"
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
