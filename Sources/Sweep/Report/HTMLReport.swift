import Foundation

/// index.html: one self-contained page (inline CSS and SVG, nothing fetched).
struct HTMLReport {
    let data: ReportData
    var details = ReportDetails()
    var generated = Date()
    /// While the sweep runs, the page reloads itself this often (`circuitry report --watch`
    /// rewrites it).
    static let refreshSeconds = 30

    func render() -> String {
        let points = SweepFrontier.points(data)
        let headline = SweepFrontier.headline(data)
        var body = "<h1>\(escape(data.sweepName))</h1>\n"
        body += "<p class=\"meta\">\(shardSummary()) · generated \(timestamp())</p>\n"
        body += runningNote()
        body += filesNav()
        body += headlineSection(headline)
        body += "<section><h2>Capability against interpretability</h2>\n"
        body += "<p>Each point is a trained model: its held-out pretraining loss and the geometric mean, over the tasks it reached, of its circuit's edges at task loss \(ReportFormat.number(data.headlineTarget)). Lower-left is better on both. Ringed points are Pareto-optimal. The dashed line is the dense frontier (the dense models, afrac 1, that no other dense model beats on both axes): a sparse model below it has smaller circuits than dense models of its loss.</p>\n"
        body += responsive { frontierPlot(points, width: $0) } + "\n</section>\n"
        body += widthLeverSection()
        body += controlsSection()
        body += taskSection()
        body += circuitsSection()
        body += trainingSection()
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

    func frontierPlot(_ points: [FrontierPoint], width: Double = 640) -> SVGPlot {
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
                       guide: denseFrontier.count > 1 ? (name: "dense frontier", points: denseFrontier) : nil,
                       width: width, plotHeight: width > 600 ? 460 : 360)
    }

    private func taskSection() -> String {
        var s = "<section><h2>Circuit size against task loss, per task</h2>\n"
        s += "<p>For each target task loss, the smallest circuit any λ reached. Targets no λ reached are not drawn; they count as unreachable in the tables. All panels share their axes.</p>\n<div class=\"grid\">\n"
        let shared = taskPanelRanges()
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
                               logY: true, series: series, xRange: shared?.x, yRange: shared?.y,
                               width: Self.panelWidth, plotHeight: 300)
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
        var s = "<section><h2>Shards</h2><p>Duration and worker are those of each shard's latest attempt (so far, while it runs).</p><table class=\"wrap\"><tr><th>shard</th><th>kind</th><th>state</th><th>attempts</th><th>duration</th><th>worker</th><th>error</th></tr>\n"
        for sh in shards {
            let seconds = sh.state == ShardState.pending.rawValue ? nil : details.seconds(ofShard: sh.id)
            s += "<tr class=\"\(escape(sh.state))\"><td>\(escape(sh.id))</td><td>\(escape(sh.kind))</td><td>\(escape(sh.state))</td><td>\(sh.attempts)</td>"
            s += "<td class=\"num\">\(seconds.map(Self.duration) ?? "")</td><td>\(escape(details.shardTimes[sh.id]?.worker ?? ""))</td><td class=\"error\">\(escape(sh.error ?? ""))</td></tr>\n"
        }
        return s + "</table></section>\n"
    }

    private func page(_ body: String) -> String {
        let refresh = details.running ? "<meta http-equiv=\"refresh\" content=\"\(Self.refreshSeconds)\">\n" : ""
        return """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        \(refresh)<title>\(escape(data.sweepName)): circuit frontiers</title>
        <style>
        \(Self.styleSheet)
        </style></head><body>
        \(body)</body></html>

        """
    }
}

// MARK: layout, plots and links

extension HTMLReport {
    /// The content width at the page's widest (max-width 1100 less padding), the width of the
    /// per-task panels (three to a row there, one at phone width), and the main plot's narrower
    /// renderings: each plot is drawn near the width it is shown at, so its text keeps its size.
    static let contentWidth = 1068.0
    static let panelWidth = 350.0
    static let mediumWidth = 720.0
    static let narrowWidth = 388.0

    /// The same plot at the page's three widths; the style sheet shows the one that fits.
    func responsive(_ plot: (Double) -> SVGPlot) -> String {
        "<div class=\"at-wide\">\(plot(Self.contentWidth).render())</div><div class=\"at-medium\">\(plot(Self.mediumWidth).render())</div><div class=\"at-narrow\">\(plot(Self.narrowWidth).render())</div>"
    }

    static let styleSheet = """
    body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1100px; padding: 12px 16px; color: #222; }
    h1 { font-size: 1.5em; margin: 0.3em 0; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
    .meta { color: #555; } .headline { font-size: 1.25em; } a { color: #1a5fb4; }
    nav.files { display: flex; flex-wrap: wrap; gap: 4px 14px; margin: 6px 0; } .running { background: #fff4d6; padding: 6px 10px; border-radius: 4px; }
    table { border-collapse: collapse; font-size: 14px; } td, th { padding: 3px 8px; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }
    th { font-weight: 600; } td.num { text-align: right; white-space: nowrap; } td.model { white-space: nowrap; }
    .scroll { overflow-x: auto; } table.wrap { width: 100%; } table.wrap td { overflow-wrap: anywhere; }
    tr.failed td { background: #fdecea; } td.error { font-family: ui-monospace, monospace; font-size: 13px; white-space: pre-wrap; overflow-wrap: anywhere; max-width: 40em; }
    svg.plot { width: 100%; height: auto; display: block; }
    .at-medium, .at-narrow { display: none; }
    @media (max-width: 1000px) { .at-wide { display: none; } .at-medium { display: block; } }
    @media (max-width: 640px) { .at-medium { display: none; } .at-narrow { display: block; } body { padding: 8px 16px; }
      td, th { padding: 3px 4px; } }
    .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 8px; } figure { margin: 0; }
    @media (max-width: 420px) { .grid { grid-template-columns: 1fr; } }
    .title { font-size: 15px; font-weight: 600; } .tick { font-size: 12px; fill: #444; } .axis { font-size: 13px; fill: #222; }
    .label { font-size: 12px; } .legend { font-size: 13px; } .empty { font-size: 14px; fill: #777; }
    .frame { fill: none; stroke: #999; } line.gridline { stroke: #eee; }
    """

    /// Per-task panels share both axes: a panel's scale then says how its task compares.
    func taskPanelRanges() -> (x: (Double, Double), y: (Double, Double))? {
        let drawn = data.circuits.filter { $0.reachable && $0.edges != nil }
        guard let first = drawn.first else { return nil }
        var x = (first.target, first.target), y = (Double(max(first.edges!, 1)), Double(max(first.edges!, 1)))
        for c in drawn {
            x = (min(x.0, c.target), max(x.1, c.target))
            let e = Double(max(c.edges!, 1))
            y = (min(y.0, e), max(y.1, e))
        }
        return (x, y)
    }

    static func duration(_ seconds: Double) -> String {
        if seconds < 60 { return String(format: "%.1f s", seconds) }
        let whole = Int(seconds.rounded())
        if whole < 3600 { return String(format: "%d min %02d s", whole / 60, whole % 60) }
        return String(format: "%d h %02d min", whole / 3600, (whole % 3600) / 60)
    }

    func runningNote() -> String {
        guard details.running else { return "" }
        return "<p class=\"running\">The sweep is still running. This page reloads every \(Self.refreshSeconds) s; <code>circuitry report --watch RUN_DIR</code> keeps rewriting it until the sweep ends.</p>\n"
    }

    /// Links to the data files beside index.html.
    func filesNav() -> String {
        var links = [("frontier.csv", "frontier.csv"), ("frontier.json", "frontier.json"), ("models.csv", "models.csv")]
        if !details.trainingCurves.isEmpty { links.append(("training_curves.csv", "training_curves.csv")) }
        if !circuitPages().isEmpty { links.append(("#circuits", "circuit pages")) }
        return "<nav class=\"files\">Data: " + links.map { "<a href=\"\($0.0)\">\(escape($0.1))</a>" }.joined(separator: " ") + "</nav>\n"
    }

    /// The circuits at the headline target that have a document, in model then task order.
    func circuitPages() -> [(model: ReportModel, circuit: ReportCircuit)] {
        data.models.flatMap { model in
            data.headlineCircuits(of: model).filter { $0.circuitJSON != nil }.sorted { $0.task < $1.task }.map { (model, $0) }
        }
    }

    func circuitsSection() -> String {
        let pages = circuitPages()
        guard !pages.isEmpty else { return "" }
        var s = "<section id=\"circuits\"><h2>Circuits at task loss \(ReportFormat.number(data.headlineTarget))</h2>\n"
        s += "<p>Each circuit's page draws its nodes and edges and, per node, its ablation effect and the held-out text it responds to. The JSON is the circuit document.</p>\n"
        s += "<table class=\"wrap\"><tr><th>model</th><th>task</th><th>nodes</th><th>edges</th><th>task loss</th><th>files</th></tr>\n"
        for (model, c) in pages {
            let key = ReportDetails.circuitKey(modelID: model.identifier, task: c.task)
            s += "<tr><td>\(escape(model.label))</td><td>\(escape(c.task))</td><td class=\"num\">\(c.nodes.map(String.init) ?? "")</td>"
            s += "<td class=\"num\">\(c.edges.map(String.init) ?? "")</td><td class=\"num\">\(ReportFormat.loss(c.reachedLoss))</td>"
            s += "<td><a href=\"circuits/\(escape(key)).html\">page</a> · <a href=\"circuits/\(escape(key)).json\">JSON</a></td></tr>\n"
        }
        return s + "</table></section>\n"
    }

    /// Per model, its training and held-out loss through training; then every model's density.
    func trainingSection() -> String {
        let curves = data.models.enumerated().compactMap { i, m in details.trainingCurves[m.identifier].map { (i, m, $0) } }
        guard !curves.isEmpty else { return "" }
        var s = "<section id=\"training\"><h2>Training</h2>\n"
        s += "<p>Training loss is that of each reported step's batch; held-out loss is evaluated 20 times through training. Loss panels share their axes. Data: <a href=\"training_curves.csv\">training_curves.csv</a>.</p>\n<div class=\"grid\">\n"
        let losses = curves.flatMap { $0.2.rows.flatMap { [$0.trainLoss] + ($0.heldOutLoss.map { [$0] } ?? []) } }
        let steps = curves.flatMap { $0.2.rows.map { Double($0.step) } }
        let yRange = losses.isEmpty ? nil : (losses.min()!, losses.max()!)
        let xRange = steps.isEmpty ? nil : (0.0, steps.max()!)
        for (index, model, curve) in curves {
            let train = SVGPlot.Series(name: "training (batch)", points: curve.rows.map { SVGPlot.Point(x: Double($0.step), y: $0.trainLoss) },
                                       connect: true, colorIndex: index, dots: false)
            let heldOut = SVGPlot.Series(name: "held out", points: curve.rows.compactMap { r in
                r.heldOutLoss.map { SVGPlot.Point(x: Double(r.step), y: $0, tooltip: "step \(r.step): held-out loss \(ReportFormat.loss($0))") }
            }, connect: true, colorIndex: index, color: "#222")
            let plot = SVGPlot(title: model.label, xLabel: "step", yLabel: "loss (nats per token)", logY: false,
                               series: [train, heldOut], xRange: xRange, yRange: yRange, width: Self.panelWidth, plotHeight: 280)
            s += "<figure>\(plot.render())</figure>\n"
        }
        let density = curves.map { index, model, curve in
            SVGPlot.Series(name: model.label, points: curve.rows.map { SVGPlot.Point(x: Double($0.step), y: $0.density) },
                           connect: true, colorIndex: index, dots: false)
        }
        let densityPlot = SVGPlot(title: "block density", xLabel: "step", yLabel: "fraction of nonzero weights", logY: true,
                                  series: density, xRange: xRange, width: Self.panelWidth, plotHeight: 280)
        s += "<figure>\(densityPlot.render())</figure>\n"
        return s + "</div></section>\n"
    }
}
