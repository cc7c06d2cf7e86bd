import Foundation
import XCTest
@testable import Sweep

final class ReportTests: XCTestCase {
    /// Two widths, dense and sparse; sparse circuits smaller. Circuits at 0.15 for two tasks,
    /// one of which the narrow dense model cannot reach.
    func sampleData() -> ReportData {
        let models = [
            ReportModel(density: 1, embedDensity: 1, dModel: 64, afrac: 1, seed: 0, pretrainLoss: 1.9, nonzeroWeights: 168_256),
            ReportModel(density: 1, embedDensity: 1, dModel: 128, afrac: 1, seed: 0, pretrainLoss: 1.5, nonzeroWeights: 533_120),
            ReportModel(density: 0.0625, embedDensity: 0.25, dModel: 128, afrac: 0.25, seed: 0, pretrainLoss: 1.7, nonzeroWeights: 60_032),
            ReportModel(density: 0.0625, embedDensity: 0.25, dModel: 256, afrac: 0.25, seed: 0, pretrainLoss: nil),
        ]
        func c(_ m: ReportModel, _ task: String, _ target: Double, _ edges: Int?) -> ReportCircuit {
            ReportCircuit(modelID: m.identifier, task: task, target: target, reachable: edges != nil,
                          reachedLoss: edges == nil ? nil : target - 0.01, nodes: edges.map { $0 / 3 }, edges: edges,
                          circuitJSON: edges == nil ? nil : Data("{\"edges\":\(edges!)}".utf8))
        }
        let circuits = [
            c(models[0], "bracket_counting", 0.15, 4000), c(models[0], "single_double_quote", 0.15, nil),
            c(models[0], "bracket_counting", 0.3, 2000),
            c(models[1], "bracket_counting", 0.15, 1000), c(models[1], "single_double_quote", 0.15, 400),
            c(models[2], "bracket_counting", 0.15, 100), c(models[2], "single_double_quote", 0.15, 25),
        ]
        let shards = [ReportShard(id: "prepare", kind: "prepare", state: "done", attempts: 1),
                      ReportShard(id: "train-d0.0625-w256", kind: "train", state: "failed", attempts: 3,
                                  error: "out of memory <killed>")]
        return ReportData(sweepName: "sample", models: models, circuits: circuits, shards: shards)
    }

    func testGeometricMeanSkipsUnreachedTasksAndUntrainedModels() {
        let points = SweepFrontier.points(sampleData())
        XCTAssertEqual(points.count, 3)
        let narrowDense = points.first { $0.model.dModel == 64 }!
        XCTAssertEqual(narrowDense.geometricMeanEdges, 4000, accuracy: 1e-9)
        XCTAssertEqual(narrowDense.tasksReached, 1)
        XCTAssertEqual(narrowDense.tasksTotal, 2)
        let sparse = points.first { !$0.model.isDense }!
        XCTAssertEqual(sparse.geometricMeanEdges, 50, accuracy: 1e-9)  // sqrt(100 * 25)
    }

    func testParetoMarksOnlyUndominatedPoints() {
        XCTAssertEqual(SweepFrontier.paretoIndices([(1, 10), (2, 5), (2, 20), (3, 1), (3, 2)]), [0, 1, 3])
        let points = SweepFrontier.points(sampleData())
        // dense w64 (1.9, 4000) is dominated by sparse w128 (1.7, 50)
        XCTAssertEqual(points.filter(\.isPareto).map(\.model.dModel).sorted(), [128, 128])
    }

    func testHeadlineInterpolatesLogEdgesAlongTheDenseFrontier() {
        var data = sampleData()
        // make the w64 dense model Pareto-optimal among dense models: worse loss, fewer edges
        data.circuits[0].edges = 500
        data.circuits[0].circuitJSON = nil
        data.circuits[1].reachable = true
        data.circuits[1].edges = 200
        let headline = SweepFrontier.headline(data)
        XCTAssertTrue(headline.interpolated)
        XCTAssertEqual(headline.tasks, ["bracket_counting", "single_double_quote"])
        XCTAssertEqual(headline.rows.count, 1)
        // dense frontier: (1.5, geomean(1000, 400) = 632.46) to (1.9, geomean(500, 200) = 316.23);
        // sparse at 1.7 is halfway
        let expectedDense = exp((log(sqrt(1000.0 * 400)) + log(sqrt(500.0 * 200))) / 2)
        XCTAssertEqual(headline.rows[0].denseEdges ?? 0, expectedDense, accuracy: 1e-6)
        XCTAssertEqual(headline.ratio!, expectedDense / 50, accuracy: 1e-6)
    }

    func testFrontierPlotDrawsTheDenseFrontierWhenItHasTwoPoints() {
        var data = sampleData()
        XCTAssertFalse(HTMLReport(data: data).render().contains("stroke-dasharray=\"6 4\""), "one dense Pareto point: no line")
        data.circuits[0].edges = 500  // the w64 dense model joins the dense frontier
        let html = HTMLReport(data: data).render()
        XCTAssertEqual(html.components(separatedBy: "stroke-dasharray=\"6 4\"").count - 1, 3, "one line in each of the plot's three renderings")
        XCTAssertTrue(html.contains(">dense frontier</text>"))
    }

    func testHeadlineIsNeverExtrapolated() {
        // Only the w128 dense model is on the dense frontier over bracket_counting (the w64 one has
        // more edges at a higher loss), and the sparse loss 1.7 lies above it: no ratio.
        let data = sampleData()
        let headline = SweepFrontier.headline(data)
        XCTAssertNil(headline.ratio)
        XCTAssertEqual(headline.rows.count, 1)
        XCTAssertNil(headline.rows[0].denseEdges)
        let miss = headline.rows[0].miss ?? ""
        XCTAssertTrue(miss.contains("every dense model on the dense frontier is better"), miss)
        XCTAssertTrue(miss.contains("d_model 64 has a higher loss but larger circuits"), miss)
        XCTAssertTrue(miss.contains("narrower than d_model 128"), miss)
        let text = HeadlineText.render(data)
        XCTAssertTrue(text.contains("not bracketed"), text)
        XCTAssertFalse(text.contains("nearest"), text)
        let html = HTMLReport(data: data).render()
        XCTAssertTrue(html.contains("No headline ratio"))
        XCTAssertTrue(html.contains("add a dense model narrower than d_model 128"))

        // Below every dense loss: every dense model is worse.
        var better = data
        better.models[2].pretrainLoss = 1.4
        let worse = SweepFrontier.headline(better)
        XCTAssertNil(worse.ratio)
        let advice = worse.rows[0].miss ?? ""
        XCTAssertTrue(advice.contains("every dense model is worse"), advice)
        XCTAssertTrue(advice.contains("wider than d_model 128 or train the dense models longer"), advice)
        XCTAssertTrue(HeadlineText.render(better).contains("every dense model is worse"))
    }

    func testHeadlineComparesModelsOnTheTasksEveryModelReached() {
        var data = sampleData()
        data.circuits[0].edges = 500  // the w64 dense model joins the dense frontier: (1.5, 1000) to (1.9, 500)
        let headline = SweepFrontier.headline(data)
        // the w64 dense model missed single_double_quote, so only bracket_counting counts
        XCTAssertEqual(headline.tasks, ["bracket_counting"])
        XCTAssertEqual(headline.rows.count, 1)
        XCTAssertEqual(headline.rows[0].sparseEdges, 100, accuracy: 1e-9)
        XCTAssertEqual(headline.ratio!, sqrt(1000.0 * 500) / 100, accuracy: 1e-6)
        // the plot keeps each model's mean over its own reached tasks
        XCTAssertEqual(SweepFrontier.points(data).first { !$0.model.isDense }!.geometricMeanEdges, 50, accuracy: 1e-9)
        XCTAssertTrue(HeadlineText.render(data).contains("over the 1 tasks every model reached"), HeadlineText.render(data))
        XCTAssertTrue(HTMLReport(data: data).render().contains("over the 1 tasks every model reached (bracket_counting)"))

        // no task reached by all: each model's own tasks stand in, and the text says so
        var disjoint = data
        for i in disjoint.circuits.indices where disjoint.circuits[i].target == 0.15 {
            let c = disjoint.circuits[i]
            let dense64 = c.modelID == data.models[0].identifier, dense128 = c.modelID == data.models[1].identifier
            if (dense64 && c.task == "bracket_counting") || (dense128 && c.task == "single_double_quote") {
                disjoint.circuits[i].reachable = false
                disjoint.circuits[i].edges = nil
            } else if dense64 {
                disjoint.circuits[i].reachable = true
                disjoint.circuits[i].edges = 300
            }
        }
        let fallback = SweepFrontier.headline(disjoint)
        XCTAssertEqual(fallback.tasks, [])
        XCTAssertEqual(fallback.rows.count, 1)
        XCTAssertEqual(fallback.rows[0].sparseEdges, 50, accuracy: 1e-9)
        XCTAssertTrue(HeadlineText.render(disjoint).contains("no task reached by every model"), HeadlineText.render(disjoint))
    }

    func testHeadlineNeedsDenseAndSparse() {
        var data = sampleData()
        data.models.removeAll { !$0.isDense }
        XCTAssertNil(SweepFrontier.headline(data).ratio)
        XCTAssertTrue(HeadlineText.render(data).contains("needs at least one dense and one sparse"))
    }

    func testWritesEveryFileWithOneRowPerModelTaskTarget() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("report-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = sampleData()
        try ReportWriter(data: data).write(to: dir)
        let csv = try String(contentsOf: dir.appendingPathComponent("frontier.csv"), encoding: .utf8)
        let lines = csv.split(separator: "\n")
        XCTAssertEqual(lines.first, "density,embed_density,d_model,afrac,seed,task,pretrain_loss,target,reached_loss,nodes,edges,reachable,status,full_loss,necessity_loss,role")
        XCTAssertEqual(lines.count, 1 + data.circuits.count)
        XCTAssertTrue(lines.contains("1,1,64,1,0,single_double_quote,1.9,0.15,,,,false,unreachable,,,dense"), csv)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("frontier.json"))) as! [[String: Any]]
        XCTAssertEqual(json.count, data.circuits.count)
        XCTAssertEqual(Set(json[0].keys), Set(ReportWriter.frontierColumns))
        let models = try String(contentsOf: dir.appendingPathComponent("models.csv"), encoding: .utf8)
        let sparseRow = models.split(separator: "\n").first { $0.hasPrefix("0.0625,0.25,128,") } ?? ""
        XCTAssertTrue(sparseRow.hasPrefix("0.0625,0.25,128,0.25,0,1.7,60032,50.0") && sparseRow.hasSuffix(",2,2,sparse"), models)
        XCTAssertTrue(models.contains("0.0625,0.25,256,0.25,0,,,,0,0,sparse"), models)
        let circuitFiles = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("circuits").path)
            .filter { $0.hasSuffix(".json") }
        XCTAssertEqual(circuitFiles.count, 5)
        XCTAssertTrue(circuitFiles.contains("d0.0625-w128-a0.25-s0__bracket_counting.json"))
    }

    func testPageIsSelfContainedAndShowsFailuresEscaped() throws {
        let html = HTMLReport(data: sampleData()).render()
        XCTAssertFalse(html.contains("<script"))
        XCTAssertFalse(html.contains("http://") && html.contains("src="))
        XCTAssertTrue(html.contains("out of memory &lt;killed&gt;"))
        XCTAssertEqual(html.components(separatedBy: "<svg").count - 1, 3 + sampleData().tasks.count,
                       "the main plot at three widths, a panel per task")
        XCTAssertTrue(html.contains("pretraining loss (nats per token, held out)"))
        XCTAssertTrue(html.contains("Pareto-optimal"))
    }

    func testATaskNoModelReachedSaysSo() {
        var data = sampleData()
        data.circuits = data.circuits.map { c in
            var c = c
            if c.task == "single_double_quote" { c.reachable = false; c.edges = nil }
            return c
        }
        XCTAssertTrue(HTMLReport(data: data).render().contains("no model reached any target loss"))
    }

    func testEmptyRunRendersWithoutData() {
        let data = ReportData(sweepName: "empty", models: [], circuits: [], shards: [])
        let html = HTMLReport(data: data).render()
        XCTAssertTrue(html.contains("no data yet"))
        XCTAssertTrue(HeadlineText.render(data).contains("no circuits yet"))
    }

    /// A one-layer circuit (d_model 8, heads of 4) in the circuit document's format, and its
    /// analysis: 12 kept nodes, 2 candidate tokens, 9 edges.
    static let circuitFixture = """
        {"task": "single_double_quote", "target": 0.15, "reachable": true, "full_loss": 0.02, "reached_loss": 0.14,
         "lambda": 0.001, "node_count": 12, "edge_count": 9, "total_nodes": 136, "candidate_tokens": [7, 9],
         "locations": [
          {"name": "0.attn_in", "size": 8, "kept": [{"index": 1, "mean": 0.1}, {"index": 3, "mean": -0.2}]},
          {"name": "0.q", "size": 8, "kept": [{"index": 0, "mean": 0.0}, {"index": 5, "mean": 0.3}]},
          {"name": "0.k", "size": 8, "kept": [{"index": 1, "mean": 0.05}]},
          {"name": "0.v", "size": 8, "kept": [{"index": 6, "mean": -0.4}]},
          {"name": "0.attn_out", "size": 8, "kept": [{"index": 2, "mean": 0.2}]},
          {"name": "0.mlp_in", "size": 8, "kept": [{"index": 2, "mean": 0.1}]},
          {"name": "0.mlp_neuron", "size": 32, "kept": [{"index": 10, "mean": 0.6}, {"index": 17, "mean": 0.0}]},
          {"name": "0.mlp_out", "size": 8, "kept": [{"index": 3, "mean": -0.1}]},
          {"name": "final_resid", "size": 8, "kept": [{"index": 3, "mean": 0.7}]}],
         "edges": [
          {"matrix": "h.0.attn.c_attn", "source": "0.attn_in", "target": "0.q", "edges": [{"from": 1, "to": 0, "weight": 0.5}, {"from": 3, "to": 5, "weight": -0.25}]},
          {"matrix": "h.0.attn.c_attn", "source": "0.attn_in", "target": "0.k", "edges": [{"from": 1, "to": 1, "weight": 0.8}]},
          {"matrix": "h.0.attn.c_attn", "source": "0.attn_in", "target": "0.v", "edges": [{"from": 3, "to": 6, "weight": 1.1}]},
          {"matrix": "h.0.attn.c_proj", "source": "0.v", "target": "0.attn_out", "edges": [{"from": 6, "to": 2, "weight": -0.9}]},
          {"matrix": "h.0.mlp.c_fc", "source": "0.mlp_in", "target": "0.mlp_neuron", "edges": [{"from": 2, "to": 10, "weight": 0.7}, {"from": 2, "to": 17, "weight": 0.2}]},
          {"matrix": "h.0.mlp.c_proj", "source": "0.mlp_neuron", "target": "0.mlp_out", "edges": [{"from": 10, "to": 3, "weight": 0.4}]},
          {"matrix": "lm_head", "source": "final_resid", "target": "logits", "edges": [{"from": 3, "to": 7, "weight": 1.5}]}],
         "bisection": [{"k": 68, "loss": 0.05}, {"k": 34, "loss": 0.08}, {"k": 17, "loss": 0.12}, {"k": 8, "loss": 0.6}, {"k": 12, "loss": 0.14}]}
        """

    static func analysisFixture() -> String {
        let nodes = [("0.attn_in", 1), ("0.attn_in", 3), ("0.q", 0), ("0.q", 5), ("0.k", 1), ("0.v", 6), ("0.attn_out", 2),
                     ("0.mlp_in", 2), ("0.mlp_neuron", 10), ("0.mlp_neuron", 17), ("0.mlp_out", 3), ("final_resid", 3)]
        let snippet = #"{"tokens": ["x", " =", " '", "a", "'", "\n"], "activations": [0.1, -0.2, 0.9, 0.3, -0.5, 0.0], "position": 2, "value": 0.9}"#
        let entries = nodes.enumerated().map { i, n in
            // 0.v 6 hurts most when removed: the page starts on it.
            let loss = n.0 == "0.v" ? 0.9 : 0.15 + Double(i) * 0.01
            return #"{"location": "\#(n.0)", "index": \#(n.1), "ablated_loss": \#(loss), "mean_a": 0.4, "mean_b": -0.3, "top": [\#(snippet)], "bottom": [\#(snippet)]}"#
        }
        return """
            {"task": "single_double_quote", "target": 0.15, "d_model": 8, "n_layer": 1, "d_head": 4, "circuit_loss": 0.14,
             "pairs_measured": 128, "held_out_windows": 64, "window_length": 64, "seconds": 1.5,
             "nodes": [\(entries.joined(separator: ", "))],
             "pairs": [{"prompt_a": ["x", " =", " '", "a"], "prompt_b": ["x", " =", " \\"", "a"], "answer_a": "'", "answer_b": "\\"",
                        "answer_token_a": 7, "answer_token_b": 9}]}
            """
    }

    /// The sample with a real circuit document for one circuit, its analysis, training curves and
    /// shard times.
    func sampleWithDetails() -> (ReportData, ReportDetails) {
        var data = sampleData()
        let sparse = data.models[2]
        let index = data.circuits.firstIndex { $0.modelID == sparse.identifier && $0.task == "single_double_quote" }!
        data.circuits[index].circuitJSON = Data(Self.circuitFixture.utf8)
        var details = ReportDetails()
        details.analyses[ReportDetails.circuitKey(modelID: sparse.identifier, task: "single_double_quote")] = Data(Self.analysisFixture().utf8)
        details.trainingCurves[data.models[0].identifier] = TrainingCurve(rows: (1...10).map {
            .init(step: $0 * 10, trainLoss: 4 - Double($0) * 0.2, heldOutLoss: $0 % 5 == 0 ? 3.9 - Double($0) * 0.2 : nil,
                  density: 1, embedDensity: 1, learningRate: 0.01)
        })
        details.trainingCurves[sparse.identifier] = TrainingCurve(rows: (1...10).map {
            .init(step: $0 * 10, trainLoss: 4.5 - Double($0) * 0.2, heldOutLoss: nil,
                  density: max(0.0625, 1 - Double($0) * 0.1), embedDensity: 0.25, learningRate: 0.01)
        })
        details.now = 1000
        details.shardTimes["prepare"] = ShardTime(worker: "w1/slot0", startedAt: 100, endedAt: 112.5)
        details.shardTimes["train-d0.0625-w256"] = ShardTime(worker: "w2/slot1", startedAt: 200, endedAt: 3_900)
        return (data, details)
    }

    func testTaskPanelsShareTheirAxes() {
        let html = HTMLReport(data: sampleData()).render()
        // Both task panels span 10 to 10000 edges: every panel draws the same y tick labels.
        let figures = html.components(separatedBy: "<figure>").dropFirst().map { $0.components(separatedBy: "</figure>")[0] }
        XCTAssertEqual(figures.count, 2)
        for figure in figures {
            XCTAssertTrue(figure.contains(">10</text>") && figure.contains(">10000</text>"), figure)
        }
    }

    func testShardTableShowsDurationAndWorker() {
        let (data, details) = sampleWithDetails()
        let html = HTMLReport(data: data, details: details).render()
        XCTAssertTrue(html.contains("<td class=\"num\">12.5 s</td><td>w1/slot0</td>"), html)
        XCTAssertTrue(html.contains("<td class=\"num\">1 h 01 min</td><td>w2/slot1</td>"))
    }

    func testLinksDataFilesCircuitPagesAndTrainingCurves() throws {
        let (data, details) = sampleWithDetails()
        let html = HTMLReport(data: data, details: details).render()
        for link in ["frontier.csv", "frontier.json", "models.csv", "training_curves.csv",
                     "circuits/d0.0625-w128-a0.25-s0__single_double_quote.html", "circuits/d0.0625-w128-a0.25-s0__single_double_quote.json"] {
            XCTAssertTrue(html.contains("href=\"\(link)\""), link)
        }
        XCTAssertTrue(html.contains("aria-label=\"block density\""))
        XCTAssertFalse(html.contains("http-equiv=\"refresh\""), "a finished sweep does not reload")
        var running = details
        running.running = true
        XCTAssertTrue(HTMLReport(data: data, details: running).render().contains("<meta http-equiv=\"refresh\" content=\"30\">"))

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("report-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try ReportWriter(data: data, details: details).write(to: dir)
        let csv = try String(contentsOf: dir.appendingPathComponent("training_curves.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.first, "density,embed_density,d_model,afrac,seed,step,train_loss,held_out_loss,step_density,step_embed_density,learning_rate")
        XCTAssertEqual(csv.count, 21)
        XCTAssertTrue(csv.contains("1,1,64,0.25,0,50,3.0,2.9,1.0,1.0,0.01"), "\(csv)")
        let pages = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("circuits").path).filter { $0.hasSuffix(".html") }
        XCTAssertEqual(pages.count, 5, "one page per circuit at the headline target")
    }

    func testCircuitPageIsSelfContained() throws {
        let (data, details) = sampleWithDetails()
        let model = data.models[2]
        let circuit = data.circuits.first { $0.modelID == model.identifier && $0.task == "single_double_quote" }!
        let key = ReportDetails.circuitKey(modelID: model.identifier, task: circuit.task)
        let html = try CircuitPage(model: model, circuit: circuit, analysis: details.analyses[key], sweepName: "sample").render()
        XCTAssertFalse(html.contains("src="))
        XCTAssertFalse(html.contains("href=\"http"))
        XCTAssertTrue(html.contains("<pre class=\"pair\">x = 'a<mark>'</mark></pre>"), "the pair as text")
        XCTAssertTrue(html.contains("aria-label=\"bisection over k\""))
        XCTAssertTrue(html.contains("12 of 136 nodes, 9 edges"))

        // A newer document's status and necessity are shown; a page without analysis says so.
        var newer = circuit
        newer.circuitJSON = Data(Self.circuitFixture.replacingOccurrences(of: #""reachable": true,"#,
                                                                          with: #""reachable": true, "status": "collapsed", "necessity_loss": 0.61,"#).utf8)
        let plain = try CircuitPage(model: model, circuit: newer, analysis: nil, sweepName: "sample").render()
        XCTAssertTrue(plain.contains("has task loss 0.6100"))
        XCTAssertTrue(plain.contains("Status: collapsed."))
        XCTAssertTrue(plain.contains("This circuit has no analysis"))
        XCTAssertTrue(plain.contains("No pairs recorded with this circuit."))
    }

    func testTrainingCurveRoundTripsAndNamesBadLines() throws {
        let curve = TrainingCurve(rows: [.init(step: 1, trainLoss: 5.5, heldOutLoss: nil, density: 0.5, embedDensity: 1, learningRate: 0.01),
                                         .init(step: 2, trainLoss: 5.25, heldOutLoss: 5.0, density: 0.25, embedDensity: 1, learningRate: 0.01)])
        XCTAssertEqual(try TrainingCurve.parse(curve.csv(), source: "c.csv"), curve)
        let bad = curve.csv().replacingOccurrences(of: "5.25", with: "five")
        XCTAssertThrowsError(try TrainingCurve.parse(bad, source: "c.csv")) {
            XCTAssertTrue("\($0)".contains("c.csv: line 3: train_loss 'five' is not a number"), "\($0)")
        }
    }

    static func chromium() throws -> String {
        guard let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
            .first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            XCTFail("Chromium is not installed: `deploy/setup.sh --tests` installs it, and the report must be rendered")
            throw CocoaError(.fileNoSuchFile)
        }
        return found
    }

    /// Runs headless Chromium on `page` with `arguments`; returns its standard output.
    @discardableResult
    static func runChromium(_ arguments: [String], page: URL) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try chromium())
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"] + arguments + [page.absoluteString]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "chromium \(arguments)")
        return text
    }

    /// Renders the report and a circuit page as a person would see them, at a desktop's and a
    /// phone's width. CIRCUITRY_KEEP_SCREENSHOT=DIR keeps the PNGs.
    func testPagesRenderInHeadlessChromium() throws {
        let keep = ProcessInfo.processInfo.environment["CIRCUITRY_KEEP_SCREENSHOT"]
        let dir = keep.map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("report-png-\(UUID().uuidString)")
        defer { if keep == nil { try? FileManager.default.removeItem(at: dir) } }
        let (data, details) = sampleWithDetails()
        try ReportWriter(data: data, details: details).write(to: dir)
        let circuitPage = dir.appendingPathComponent("circuits/d0.0625-w128-a0.25-s0__single_double_quote.html")
        for (name, page) in [("index", dir.appendingPathComponent("index.html")), ("circuit", circuitPage)] {
            for width in [1280, 420] {
                let png = dir.appendingPathComponent("\(name)-\(width).png")
                try Self.runChromium(["--screenshot=\(png.path)", "--window-size=\(width),2000"], page: page)
                let bytes = try Data(contentsOf: png)
                XCTAssertEqual(Array(bytes.prefix(4)), [0x89, 0x50, 0x4E, 0x47])
                XCTAssertGreaterThan(bytes.count, 20_000, "\(name) at \(width) px is more than a blank image")
            }
        }
        // The circuit page's script built the graph: 12 kept nodes and 2 candidate tokens, 9 weight
        // edges, and started on the node whose removal hurts most, with its snippets.
        let dom = try Self.runChromium(["--dump-dom", "--window-size=1280,2000"], page: circuitPage)
        XCTAssertTrue(dom.contains("data-nodes=\"14\""), dom)
        XCTAssertTrue(dom.contains("data-edges=\"9\""))
        XCTAssertEqual(dom.components(separatedBy: "data-node=\"").count - 1, 14)
        XCTAssertEqual(dom.components(separatedBy: "data-edge=\"1\"").count - 1, 9)
        XCTAssertTrue(dom.contains("<aside id=\"details\" data-selected=\"0.v:6\"><h3>0.v head 1 · 2</h3>"), dom)
        XCTAssertTrue(dom.contains("class=\"hit\""), "the snippet's token is highlighted")
        XCTAssertTrue(dom.contains(">\"'\"</text>"), "the candidate token as a string")
    }
}
