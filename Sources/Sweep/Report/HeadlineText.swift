import Foundation

/// The headline numbers as plain-text tables, for `circuitry status` and the end of `circuitry run`.
public enum HeadlineText {
    public static func render(_ data: ReportData) -> String {
        let points = SweepFrontier.points(data)
        let headline = SweepFrontier.headline(data)
        let target = ReportFormat.number(data.headlineTarget)
        var out = "Circuit edges at task loss \(target) (geometric mean over tasks reached):\n"
        if points.isEmpty {
            return out + "  no circuits yet\n" + controls(data)
        }
        let header = ["role", "d_model", "density", "afrac", "seed", "pretrain loss", "edges", "tasks", "pareto"]
        let sorted = points.sorted {
            ($0.model.dModel, -$0.model.density, $0.model.afrac, $0.model.seed) < ($1.model.dModel, -$1.model.density, $1.model.afrac, $1.model.seed)
        }
        out += table([header] + sorted.map { p in
            [p.model.role.label, String(p.model.dModel), ReportFormat.number(p.model.density), ReportFormat.number(p.model.afrac),
             String(p.model.seed), ReportFormat.loss(p.pretrainLoss), ReportFormat.edges(p.geometricMeanEdges),
             "\(p.tasksReached)/\(p.tasksTotal)", p.isPareto ? "*" : ""]
        })
        out += headlineLines(headline)
        out += perTask(headline)
        out += widthLevers(data)
        return out + controls(data)
    }

    static func headlineLines(_ headline: Headline) -> String {
        guard !headline.rows.isEmpty else {
            return "Dense/sparse ratio: needs at least one dense and one sparse model with circuits (dense: density 1, afrac 1)\n"
        }
        var out = ""
        let over = headline.tasks.isEmpty ? "no task reached by every model" : "over the \(headline.tasks.count) tasks every model reached"
        if let ratio = headline.ratio {
            out += "Dense/sparse circuit edges at matched pretraining loss: " + ReportFormat.ratio(ratio)
            if let interval = headline.interval {
                out += " (\(Int(interval.level * 100))% interval over \(interval.seeds) seeds: \(ReportFormat.ratio(interval.low)) to \(ReportFormat.ratio(interval.high)))"
            }
            out += " (interpolated along the dense frontier; \(over))\n"
            if let note = headline.intervalNote { out += "  \(note)\n" }
        } else {
            out += "Dense/sparse ratio: not bracketed, so none (never extrapolated; \(over))\n"
        }
        for row in headline.rows {
            let name = "seed \(row.seed), \(row.sparse.model.label)"
            if let ratio = row.ratio {
                out += "  \(name): \(ReportFormat.ratio(ratio)) (\(ReportFormat.edges(row.denseEdges)) dense vs \(ReportFormat.edges(row.sparseEdges)) sparse edges)\n"
            } else {
                out += "  \(name): not bracketed: \(row.miss ?? "")\n"
            }
        }
        return out
    }

    static func perTask(_ headline: Headline) -> String {
        guard !headline.perTask.isEmpty else { return "" }
        var rows = [["task", "sparse d_model @ density (afrac)", "seed", "sparse edges", "dense edges", "edge ratio", "node ratio", "edges/node ratio",
                     "full loss sparse", "dense lo", "dense hi"]]
        for c in headline.perTask {
            rows.append([c.task, c.sparse.shortLabel, String(c.seed),
                         c.sparseCircuit?.sizeText ?? "", c.denseEdges.map(ReportFormat.edges) ?? "",
                         c.edgeRatio.map(ReportFormat.ratio) ?? "", c.nodeRatio.map(ReportFormat.ratio) ?? "",
                         c.edgesPerNodeRatio.map(ReportFormat.ratio) ?? "", ReportFormat.loss(c.sparseCircuit?.fullLoss),
                         ReportFormat.loss(c.lowerCircuit?.fullLoss), ReportFormat.loss(c.upperCircuit?.fullLoss)])
        }
        return "Per task, sparse against the dense frontier at its loss:\n" + table(rows)
    }

    static func widthLevers(_ data: ReportData) -> String {
        var out = ""
        for lever in WidthLever.levers(data) {
            out += "Width lever, \(lever.title):\n"
            var rows = [["d_model", "density", "seed", "nonzero weights", "pretrain loss", "edges", "tasks"]]
            for row in lever.rows {
                let m = row.model
                rows.append([String(m.dModel), ReportFormat.number(m.density), String(m.seed), m.nonzeroWeights.map(String.init) ?? "",
                             m.pretrainLoss.map { ReportFormat.loss($0) } ?? "training…", ReportFormat.edges(row.geometricMeanEdges),
                             "\(row.tasksReached)/\(row.circuits.count)"])
            }
            out += table(rows)
        }
        return out
    }

    static func controls(_ data: ReportData) -> String {
        var out = ""
        for control in data.controlModels {
            let atTarget = data.headlineCircuits(of: control)
            guard !atTarget.isEmpty else { continue }
            let trained = data.trainedModels.first { $0.sameShape(as: control) && $0.seed == control.seed }
            let trainedReached = trained.map { data.headlineCircuits(of: $0).filter(\.reachable).count }
            let edges = atTarget.compactMap(\.countedEdges)
            out += "Random-init control, \(control.label), seed \(control.seed): \(edges.count)/\(atTarget.count) tasks reached"
            if !edges.isEmpty { out += " (\(ReportFormat.edges(SweepFrontier.geometricMean(edges.map { Double(max($0, 1)) }))) edges)" }
            let collapsed = atTarget.filter { $0.status == .collapsed }.count
            if collapsed > 0 { out += ", \(collapsed) collapsed" }
            out += trainedReached.map { "; trained: \($0)/\(atTarget.count)\n" } ?? "\n"
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
