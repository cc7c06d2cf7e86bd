import Foundation

/// The page's science sections: the headline with its seeds and per-task decomposition, the width
/// lever, and the controls.
extension HTMLReport {
    func headlineSection(_ headline: Headline) -> String {
        var s = "<section><h2>Headline: dense against sparse circuits</h2>\n"
        let target = ReportFormat.number(data.headlineTarget)
        guard !headline.rows.isEmpty else {
            return s + "<p>Needs at least one dense model (density 1, afrac 1) and one sparse model whose circuits reached task loss \(target).</p></section>\n"
        }
        if let ratio = headline.ratio {
            s += "<p class=\"headline\">Dense circuits have <strong>\(ReportFormat.ratio(ratio))</strong> the edges of sparse circuits at matched pretraining loss"
            if let interval = headline.interval {
                s += " (\(Int(interval.level * 100))% interval over \(interval.seeds) seeds: \(ReportFormat.ratio(interval.low)) to \(ReportFormat.ratio(interval.high)))"
            }
            s += "</p>\n"
            if let note = headline.intervalNote { s += "<p>\(escape(note.prefix(1).uppercased() + note.dropFirst())).</p>\n" }
            if headline.seedRatios.count > 1 {
                s += "<p>Per seed: " + headline.seedRatios.map { "seed \($0.seed) \(ReportFormat.ratio($0.ratio))" }.joined(separator: ", ") + ".</p>\n"
            }
            s += "<p>Seed by seed, each Pareto-optimal sparse model is compared with the dense frontier of its seed (dense in weights and activations) interpolated at its own pretraining loss (log edges, linear in loss), only where two dense losses bracket it; a seed's ratio is the geometric mean of its bracketed rows, the headline the geometric mean over seeds. The paper reports about 16×.</p>\n"
        } else {
            s += "<p class=\"headline\">No headline ratio: no sparse model's pretraining loss lies between the dense models' losses, and the report does not extrapolate.</p>\n"
        }
        s += headline.tasks.isEmpty
            ? "<p>No task was reached by every model, so each model's edges are its geometric mean over the tasks it reached.</p>\n"
            : "<p>Edges here are geometric means over the \(headline.tasks.count) tasks every model reached (\(headline.tasks.map(escape).joined(separator: ", "))), so all models are compared on the same tasks; the plot below takes each model's mean over all the tasks it reached.</p>\n"
        s += "<div class=\"scroll\"><table><tr><th>sparse model</th><th>seed</th><th>pretrain loss</th><th>sparse edges</th><th>dense edges</th><th>ratio</th><th>dense models matched</th></tr>\n"
        for r in headline.rows {
            s += "<tr><td>\(escape(r.sparse.model.label))</td><td>\(r.seed)</td><td>\(ReportFormat.loss(r.pretrainLoss))</td><td>\(ReportFormat.edges(r.sparseEdges))</td>"
            if case let .bracketed(lower, upper, _) = r.match, let ratio = r.ratio {
                let between = lower.model == upper.model ? escape(lower.model.label)
                    : "between \(escape(lower.model.label)) (\(ReportFormat.loss(lower.pretrainLoss))) and \(escape(upper.model.label)) (\(ReportFormat.loss(upper.pretrainLoss)))"
                s += "<td>\(ReportFormat.edges(r.denseEdges))</td><td>\(ReportFormat.ratio(ratio))</td><td>\(between)</td></tr>\n"
            } else {
                s += "<td></td><td>not bracketed</td><td>\(escape(r.miss ?? ""))</td></tr>\n"
            }
        }
        return s + "</table></div></section>\n" + perTaskSection(headline)
    }

    /// Beside the headline, per task: what the ratio is made of, and whether the full model was
    /// near the target (then the circuit size says little).
    func perTaskSection(_ headline: Headline) -> String {
        guard !headline.perTask.isEmpty else { return "" }
        var s = "<section><h2>Per task, at matched pretraining loss</h2>\n"
        s += "<p>For each bracketed sparse model: its circuit at task loss \(ReportFormat.number(data.headlineTarget)) against the two dense models around its loss, interpolated as the headline is. Edge ratio = node ratio × the ratio of edges per node. A full-model task loss near the target says little about circuit size.</p>\n"
        s += "<div class=\"scroll\"><table><tr><th>task</th><th>sparse d_model @ density (afrac)</th><th>seed</th><th>sparse edges</th><th>dense edges</th><th>edge ratio</th><th>sparse nodes</th><th>dense nodes</th><th>node ratio</th><th>edges per node ratio</th><th>full-model task loss: sparse</th><th>dense (lower loss)</th><th>dense (higher loss)</th></tr>\n"
        for c in headline.perTask {
            s += "<tr><td>\(escape(c.task))</td><td class=\"model\">\(escape(c.sparse.shortLabel))</td><td>\(c.seed)</td><td>\(c.sparseCircuit?.sizeText ?? "")</td><td>\(c.denseEdges.map(ReportFormat.edges) ?? denseStatus(c))</td>"
            s += "<td>\(c.edgeRatio.map(ReportFormat.ratio) ?? "")</td><td>\(c.sparseCircuit?.reachable == true ? c.sparseCircuit?.nodes.map(String.init) ?? "" : "")</td>"
            s += "<td>\(c.denseNodes.map(ReportFormat.edges) ?? "")</td><td>\(c.nodeRatio.map(ReportFormat.ratio) ?? "")</td><td>\(c.edgesPerNodeRatio.map(ReportFormat.ratio) ?? "")</td>"
            s += "<td>\(ReportFormat.loss(c.sparseCircuit?.fullLoss))</td><td>\(ReportFormat.loss(c.lowerCircuit?.fullLoss))</td><td>\(ReportFormat.loss(c.upperCircuit?.fullLoss))</td></tr>\n"
        }
        return s + "</table></div></section>\n"
    }

    /// Why a task has no interpolated dense size: which bracketing dense model has no circuit, and
    /// why (one of the two may well have reached the target).
    private func denseStatus(_ c: TaskComparison) -> String {
        let missing = [(c.lowerDense, c.lowerCircuit), (c.upperDense, c.upperCircuit)].compactMap { model, circuit -> (String, String)? in
            guard let circuit else { return ("no circuit", model.label) }
            return circuit.reachable ? nil : (circuit.sizeText, model.label)
        }
        if missing.count == 2 && missing[0].0 == missing[1].0 { return "\(missing[0].0) for both" }
        return missing.map { "\($0.0) for \($0.1)" }.joined(separator: "; ")
    }

    func widthLeverSection() -> String {
        let levers = WidthLever.levers(data)
        guard !levers.isEmpty else { return "" }
        let target = ReportFormat.number(data.headlineTarget)
        var s = "<section><h2>The width lever</h2>\n"
        s += "<p>Sparse models widened at a fixed budget: the same nonzeros per neuron (density · d_model) or in total (density · d_model²). Edges are at task loss \(target); their geometric mean is over the tasks every model of the group reached.</p>\n"
        for lever in levers {
            s += "<h3>\(escape(lever.title))</h3>\n<div class=\"scroll\"><table><tr><th>d_model</th><th>density</th><th>seed</th><th>nonzero weights</th><th>pretrain loss</th><th>edges (geometric mean)</th><th>tasks reached</th>"
            s += data.tasks.map { "<th>\(escape($0))</th>" }.joined() + "</tr>\n"
            for row in lever.rows {
                let m = row.model
                s += "<tr><td>\(m.dModel)</td><td>\(ReportFormat.number(m.density))</td><td>\(m.seed)</td><td>\(m.nonzeroWeights.map(String.init) ?? "")</td>"
                s += "<td>\(m.pretrainLoss.map { ReportFormat.loss($0) } ?? "training…")</td><td>\(ReportFormat.edges(row.geometricMeanEdges))</td><td>\(row.tasksReached)/\(row.circuits.count)</td>"
                s += data.tasks.map { "<td>\(row.circuits[$0]?.sizeText ?? "")</td>" }.joined() + "</tr>\n"
            }
            s += "</table></div>\n"
        }
        return s + "<div class=\"grid\"><figure>\(widthLeverPlot(levers).render())</figure></div>\n</section>\n"
    }

    /// Circuit size against width, one line per lever (the losses are in the table and tooltips).
    func widthLeverPlot(_ levers: [WidthLever]) -> SVGPlot {
        let series = levers.enumerated().map { i, lever in
            SVGPlot.Series(name: lever.title, points: lever.rows.compactMap { row -> SVGPlot.Point? in
                guard let edges = row.geometricMeanEdges else { return nil }
                let loss = row.model.pretrainLoss.map { "loss \(ReportFormat.loss($0))" } ?? "training…"
                return SVGPlot.Point(x: Double(row.model.dModel), y: edges,
                                     tooltip: "\(row.model.label), seed \(row.model.seed): \(loss), \(ReportFormat.edges(edges)) edges")
            }, connect: true, colorIndex: i)
        }
        return SVGPlot(title: "Circuit size against width at a fixed budget", xLabel: "d_model",
                       yLabel: "circuit edges (geometric mean, log scale)", logY: true, series: series, width: 480, plotHeight: 320)
    }

    /// The method's controls: circuits of untrained models of the sparse shapes, and necessity.
    func controlsSection() -> String {
        let target = ReportFormat.number(data.headlineTarget)
        var s = "<section><h2>Controls</h2>\n<h3>Random initialisation</h3>\n"
        let controls = data.controlModels
        if controls.isEmpty {
            s += data.trainedModels.contains { $0.role == .sparse }
                ? "<p>This sweep has no random-init control (its sweep file sets <code>controls: {random_init: false}</code>, or the controls are not planned yet).</p>\n"
                : "<p>No sparse model, so no random-init control.</p>\n"
        } else {
            s += "<p>Each sparse shape's initialisation, projected to its density and never trained, pruned the same way. Its circuits should be unreachable or far larger than the trained model's at task loss \(target); if they are not, the pruning finds circuits in noise. Collapsed circuits count as no circuit.</p>\n"
            s += "<div class=\"scroll\"><table><tr><th>shape</th><th>held-out loss (untrained)</th><th>task</th><th>trained edges</th><th>random-init edges</th><th>random-init full-model task loss</th></tr>\n"
            for control in controls {
                let trained = data.trainedModels.first { $0.sameShape(as: control) && $0.seed == control.seed }
                for task in data.tasks {
                    let mine = data.headlineCircuit(of: control, task: task)
                    let theirs = trained.flatMap { data.headlineCircuit(of: $0, task: task) }
                    s += "<tr><td>\(escape(control.label)), seed \(control.seed)</td><td>\(ReportFormat.loss(control.pretrainLoss))</td><td>\(escape(task))</td>"
                    s += "<td>\(theirs?.sizeText ?? "")</td><td>\(mine?.sizeText ?? "")</td><td>\(ReportFormat.loss(mine?.fullLoss))</td></tr>\n"
                }
            }
            s += "</table></div>\n"
        }
        s += "<h3>Necessity</h3>\n"
        let circuits = data.trainedModels.flatMap { data.headlineCircuits(of: $0) }
        guard circuits.contains(where: { $0.necessityLoss != nil }) else {
            return s + "<p>The pruner did not record necessity for these circuits (the task loss of the full model with only the circuit's nodes ablated).</p></section>\n"
        }
        s += "<p>Task loss of the full model with only the circuit's nodes ablated (mean-ablated), beside the full model's: a necessary circuit's ablation should lose the task (loss far above \(target)). Cells read necessity / full.</p>\n"
        s += "<div class=\"scroll\"><table><tr><th>model</th><th>seed</th>" + data.tasks.map { "<th>\(escape($0))</th>" }.joined() + "</tr>\n"
        for model in data.trainedModels {
            s += "<tr><td>\(escape(model.label))</td><td>\(model.seed)</td>"
            for task in data.tasks {
                let c = data.headlineCircuit(of: model, task: task)
                let cell: String
                if let c, c.reachable, let necessity = c.necessityLoss {
                    cell = "\(ReportFormat.loss(necessity)) / \(ReportFormat.loss(c.fullLoss))"
                } else {
                    cell = c.map { $0.reachable ? "" : $0.sizeText } ?? ""
                }
                s += "<td>\(cell)</td>"
            }
            s += "</tr>\n"
        }
        return s + "</table></div></section>\n"
    }
}
