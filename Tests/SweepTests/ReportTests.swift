import Foundation
import XCTest
@testable import Sweep

final class ReportTests: XCTestCase {
    /// Two widths, dense and sparse; sparse circuits smaller. Circuits at 0.15 for two tasks,
    /// one of which the narrow dense model cannot reach.
    func sampleData() -> ReportData {
        let models = [
            ReportModel(density: 1, embedDensity: 1, dModel: 64, afrac: 0.25, seed: 0, pretrainLoss: 1.9, nonzeroWeights: 168_256),
            ReportModel(density: 1, embedDensity: 1, dModel: 128, afrac: 0.25, seed: 0, pretrainLoss: 1.5, nonzeroWeights: 533_120),
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
        XCTAssertEqual(headline.rows[0].denseEdges, expectedDense, accuracy: 1e-6)
        XCTAssertEqual(headline.ratio!, expectedDense / 50, accuracy: 1e-6)
    }

    func testFrontierPlotDrawsTheDenseFrontierWhenItHasTwoPoints() {
        var data = sampleData()
        XCTAssertFalse(HTMLReport(data: data).render().contains("stroke-dasharray=\"6 4\""), "one dense Pareto point: no line")
        data.circuits[0].edges = 500  // the w64 dense model joins the dense frontier
        let html = HTMLReport(data: data).render()
        XCTAssertEqual(html.components(separatedBy: "stroke-dasharray=\"6 4\"").count - 1, 1)
        XCTAssertTrue(html.contains(">dense frontier</text>"))
    }

    func testHeadlineFallsBackToNearestDenseModelWhenLossesDoNotOverlap() {
        let headline = SweepFrontier.headline(sampleData())
        // only the w128 dense model is on the dense Pareto set: no interval to interpolate in
        XCTAssertFalse(headline.interpolated)
        XCTAssertEqual(headline.ratio!, 1000.0 / 100, accuracy: 1e-6)
    }

    func testHeadlineComparesModelsOnTheTasksEveryModelReached() {
        let data = sampleData()
        let headline = SweepFrontier.headline(data)
        // the w64 dense model missed single_double_quote, so only bracket_counting counts
        XCTAssertEqual(headline.tasks, ["bracket_counting"])
        XCTAssertEqual(headline.rows.count, 1)
        XCTAssertEqual(headline.rows[0].sparseEdges, 100, accuracy: 1e-9)
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
        XCTAssertEqual(lines.first, "model_id,density,embed_density,d_model,afrac,seed,task,pretrain_loss,target,reached_loss,nodes,edges,reachable")
        XCTAssertEqual(lines.count, 1 + data.circuits.count)
        XCTAssertTrue(lines.contains("d1-w64-a0.25-s0,1,1,64,0.25,0,single_double_quote,1.9,0.15,,,,false"), csv)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("frontier.json"))) as! [[String: Any]]
        XCTAssertEqual(json.count, data.circuits.count)
        XCTAssertEqual(Set(json[0].keys), Set(ReportWriter.frontierColumns))
        let models = try String(contentsOf: dir.appendingPathComponent("models.csv"), encoding: .utf8)
        XCTAssertTrue(models.hasPrefix("model_id,density,embed_density,d_model,afrac,seed,pretrain_loss,nonzero_weights,target,geomean_edges,"), models)
        XCTAssertTrue(models.contains("d0.0625-w128-a0.25-s0,0.0625,0.25,128,0.25,0,1.7,60032,0.15,50.0"), models)
        XCTAssertTrue(models.contains("d0.0625-w256-a0.25-s0,0.0625,0.25,256,0.25,0,,,0.15,,0,0"), models)
        let circuitFiles = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("circuits").path)
        XCTAssertEqual(circuitFiles.count, 5)
        XCTAssertTrue(circuitFiles.contains("d0.0625-w128-a0.25-s0__bracket_counting.json"))
    }

    func testPageIsSelfContainedAndShowsFailuresEscaped() throws {
        let html = HTMLReport(data: sampleData()).render()
        XCTAssertFalse(html.contains("<script"))
        XCTAssertFalse(html.contains("http://") && html.contains("src="))
        XCTAssertTrue(html.contains("out of memory &lt;killed&gt;"))
        XCTAssertEqual(html.components(separatedBy: "<svg").count - 1, 1 + sampleData().tasks.count)
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

    /// Renders the page as a person would see it. CIRCUITRY_KEEP_SCREENSHOT=DIR keeps the PNGs.
    func testPageRendersInHeadlessChromium() throws {
        guard let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
            .first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("Chromium is not installed (apt-get install chromium): the page was not rendered")
        }
        let keep = ProcessInfo.processInfo.environment["CIRCUITRY_KEEP_SCREENSHOT"]
        let dir = keep.map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("report-png-\(UUID().uuidString)")
        defer { if keep == nil { try? FileManager.default.removeItem(at: dir) } }
        try ReportWriter(data: sampleData()).write(to: dir)
        for (name, width) in [("wide", 1100), ("narrow", 420)] {
            let png = dir.appendingPathComponent("index-\(name).png")
            let process = Process()
            process.executableURL = URL(fileURLWithPath: chromium)
            process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                 "--screenshot=\(png.path)", "--window-size=\(width),2600",
                                 dir.appendingPathComponent("index.html").absoluteString]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0)
            let bytes = try Data(contentsOf: png)
            XCTAssertEqual(Array(bytes.prefix(4)), [0x89, 0x50, 0x4E, 0x47])
            XCTAssertGreaterThan(bytes.count, 20_000, "a rendered report page is more than a blank image")
        }
    }
}
