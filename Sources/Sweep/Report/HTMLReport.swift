import Foundation

/// index.html: one self-contained page (inline CSS and SVG, nothing fetched).
struct HTMLReport {
    let data: ReportData
    var generated = Date()

    func render() -> String {
        let points = SweepFrontier.points(data)
        let headline = SweepFrontier.headline(data)
        var body = "<h1>\(escape(data.sweepName))</h1>\n"
        body += "<p class=\"meta\">\(shardSummary()) · generated \(timestamp())</p>\n"
        body += headlineSection(headline)
        body += "<section><h2>Capability against interpretability</h2>\n"
        body += "<p>Each point is a trained model: its held-out pretraining loss and the geometric mean, over the tasks it reached, of its circuit's edges at task loss \(ReportFormat.number(data.headlineTarget)). Lower-left is better on both. Ringed points are Pareto-optimal. The dashed line is the dense frontier (the dense models, afrac 1, that no other dense model beats on both axes): a sparse model below it has smaller circuits than dense models of its loss.</p>\n"
        body += frontierPlot(points).render() + "\n</section>\n"
        body += widthLeverSection()
        body += controlsSection()
        body += taskSection()
        body += modelsTable(points)
        body += shardsTable()
        return page(body)
    }

    private func shardSummary() -> String {
        guard !data.shards.isEmpty else { return "no shards" }
        let counts = Dictionary(grouping: data.shards, by: \.state).mapValues(\.count)
        return counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
    }

    private func timestamp() -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: generated)
    }

    func frontierPlot(_ points: [FrontierPoint]) -> SVGPlot {
        let widths = Array(Set(points.map(\.model.dModel))).sorted()
        let series = widths.enumerated().map { i, w in
            SVGPlot.Series(name: "d_model \(w)", points: points.filter { $0.model.dModel == w }.map { p in
                SVGPlot.Point(x: p.pretrainLoss, y: p.geometricMeanEdges, label: p.model.pointLabel,
                              marked: p.isPareto,
                              tooltip: "\(p.model.label): loss \(ReportFormat.loss(p.pretrainLoss)), \(ReportFormat.edges(p.geometricMeanEdges)) edges, \(p.tasksReached)/\(p.tasksTotal) tasks")
            }, connect: false, colorIndex: i)
        }
        let denseFrontier = SweepFrontier.paretoSubset(points.filter { $0.model.role == .dense }).map { (x: $0.pretrainLoss, y: $0.geometricMeanEdges) }
        return SVGPlot(title: "Circuit size against pretraining loss", xLabel: "pretraining loss (nats per token, held out)",
                       yLabel: "circuit edges (geometric mean, log scale)", logY: true, series: series,
                       markedLegend: "Pareto-optimal",
                       guide: denseFrontier.count > 1 ? (name: "dense frontier", points: denseFrontier) : nil)
    }

    private func taskSection() -> String {
        var s = "<section><h2>Circuit size against task loss, per task</h2>\n"
        s += "<p>For each target task loss, the smallest circuit any λ reached. Targets no λ reached are not drawn; they count as unreachable in the tables.</p>\n<div class=\"grid\">\n"
        for task in data.tasks {
            let series = data.models.enumerated().compactMap { index, model -> SVGPlot.Series? in
                let pts = data.circuits(of: model).filter { $0.task == task && $0.reachable }.compactMap { c -> SVGPlot.Point? in
                    guard let e = c.edges else { return nil }
                    return SVGPlot.Point(x: c.target, y: Double(max(e, 1)),
                                         tooltip: "\(model.label): target \(ReportFormat.number(c.target)), \(e) edges, \(c.nodes ?? 0) nodes")
                }
                return pts.isEmpty ? nil : SVGPlot.Series(name: model.label, points: pts, connect: true, colorIndex: index)
            }
            var plot = SVGPlot(title: task, xLabel: "target task loss (nats)", yLabel: "circuit edges (log scale)",
                               logY: true, series: series, width: 480, plotHeight: 320)
            if series.isEmpty { plot.emptyMessage = "no model reached any target loss" }
            s += "<figure>\(plot.render())</figure>\n"
        }
        return s + "</div></section>\n"
    }

    private func modelsTable(_ points: [FrontierPoint]) -> String {
        let byID = Dictionary(points.map { ($0.model.identifier, $0) }, uniquingKeysWith: { a, _ in a })
        var s = "<section><h2>Models</h2><div class=\"scroll\"><table><tr><th>role</th><th>d_model</th><th>density</th><th>embed density</th><th>afrac</th><th>seed</th><th>pretrain loss</th><th>nonzero weights</th><th>edges at \(ReportFormat.number(data.headlineTarget))</th><th>tasks reached</th></tr>\n"
        for m in data.models {
            let p = byID[m.identifier]
            let atTarget = data.headlineCircuits(of: m)
            s += "<tr><td>\(m.role.label)</td><td>\(m.dModel)</td><td>\(ReportFormat.number(m.density))</td><td>\(ReportFormat.number(m.embedDensity))</td><td>\(ReportFormat.number(m.afrac))</td><td>\(m.seed)</td>"
            s += "<td>\(m.pretrainLoss.map { ReportFormat.loss($0) } ?? "training…")</td><td>\(m.nonzeroWeights.map(String.init) ?? "")</td>"
            s += "<td>\(p.map { ReportFormat.edges($0.geometricMeanEdges) } ?? "")</td><td>\(atTarget.filter(\.reachable).count)/\(atTarget.count)</td></tr>\n"
        }
        return s + "</table></div></section>\n"
    }

    private func shardsTable() -> String {
        let order = ["failed": 0, "leased": 1, "running": 1, "pending": 2, "done": 3]
        let shards = data.shards.sorted { (order[$0.state] ?? 4, $0.id) < (order[$1.state] ?? 4, $1.id) }
        var s = "<section><h2>Shards</h2><div class=\"scroll\"><table><tr><th>shard</th><th>kind</th><th>state</th><th>attempts</th><th>error</th></tr>\n"
        for sh in shards {
            s += "<tr class=\"\(escape(sh.state))\"><td>\(escape(sh.id))</td><td>\(escape(sh.kind))</td><td>\(escape(sh.state))</td><td>\(sh.attempts)</td><td class=\"error\">\(escape(sh.error ?? ""))</td></tr>\n"
        }
        return s + "</table></div></section>\n"
    }

    private func page(_ body: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(escape(data.sweepName)): circuit frontiers</title>
        <style>
        body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1100px; padding: 12px 16px; color: #222; }
        h1 { font-size: 1.5em; margin: 0.3em 0; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
        .meta { color: #666; } .headline { font-size: 1.25em; }
        table { border-collapse: collapse; font-size: 0.9em; } td, th { padding: 3px 8px; border-bottom: 1px solid #eee; text-align: left; }
        .scroll { overflow-x: auto; } tr.failed td { background: #fdecea; } td.error { font-family: monospace; white-space: pre-wrap; max-width: 40em; }
        svg.plot { width: 100%; max-width: 640px; height: auto; display: block; }
        .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 8px; } figure { margin: 0; }
        .title { font-size: 15px; font-weight: 600; } .tick { font-size: 11px; fill: #555; } .axis { font-size: 13px; fill: #222; }
        .label { font-size: 11px; } .legend { font-size: 12px; } .empty { font-size: 14px; fill: #888; }
        .frame { fill: none; stroke: #999; } line.gridline { stroke: #eee; }
        </style></head><body>
        \(body)</body></html>

        """
    }
}
