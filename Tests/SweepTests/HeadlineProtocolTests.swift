import Foundation
import XCTest
@testable import Sweep

/// The headline protocol: the dense baseline, bracketing, seeds, per-task ratios, controls, the
/// width lever and collapsed circuits.
final class HeadlineProtocolTests: XCTestCase {
    private func dense(_ width: Int, loss: Double, seed: Int = 0, afrac: Double = 1) -> ReportModel {
        ReportModel(density: 1, embedDensity: 1, dModel: width, afrac: afrac, seed: seed, pretrainLoss: loss)
    }

    private func sparse(_ width: Int, density: Double, loss: Double?, seed: Int = 0, randomInit: Bool = false) -> ReportModel {
        ReportModel(density: density, embedDensity: min(1, 4 * density), dModel: width, afrac: 0.25, seed: seed,
                    randomInit: randomInit, pretrainLoss: loss)
    }

    private func circuit(_ model: ReportModel, _ task: String, edges: Int?, nodes: Int? = nil,
                         status: ReportCircuit.Status? = nil, full: Double? = nil, necessity: Double? = nil) -> ReportCircuit {
        ReportCircuit(modelID: model.identifier, task: task, target: 0.15, reachable: edges != nil, status: status,
                      reachedLoss: edges.map { _ in 0.14 }, nodes: nodes ?? edges.map { $0 / 10 }, edges: edges,
                      fullLoss: full, necessityLoss: necessity)
    }

    /// Dense d_model 64 (loss 1.9) and 128 (1.5), sparse d_model 256 at 1/16 (1.7), halfway between
    /// them: the dense frontier there has sqrt(400 · 1600) = 800 edges on task a and 200 on b, 8×
    /// the sparse model's.
    private func seedData(seed: Int = 0, sparseEdges: (Int, Int) = (100, 25)) -> (models: [ReportModel], circuits: [ReportCircuit]) {
        let d64 = dense(64, loss: 1.9, seed: seed), d128 = dense(128, loss: 1.5, seed: seed)
        let s256 = sparse(256, density: 0.0625, loss: 1.7, seed: seed)
        let circuits = [
            circuit(d64, "a", edges: 400, nodes: 40, full: 0.03), circuit(d64, "b", edges: 100),
            circuit(d128, "a", edges: 1600, nodes: 80, full: 0.01), circuit(d128, "b", edges: 400),
            circuit(s256, "a", edges: sparseEdges.0, nodes: 20, full: 0.02), circuit(s256, "b", edges: sparseEdges.1),
        ]
        return ([d64, d128, s256], circuits)
    }

    private func data(_ parts: (models: [ReportModel], circuits: [ReportCircuit])...) -> ReportData {
        ReportData(sweepName: "protocol", models: parts.flatMap(\.models), circuits: parts.flatMap(\.circuits), shards: [])
    }

    func testDenseWithAbsTopKIsAnExtraSeriesNeverTheBaseline() throws {
        var report = data(seedData())
        XCTAssertEqual(try XCTUnwrap(SweepFrontier.headline(report).ratio), 8, accuracy: 1e-9)
        // A dense model with AbsTopK at the sparse model's loss with tiny circuits: as a baseline it
        // would make the ratio 1×; and it misses task b, which must not drop b from the headline.
        let topK = dense(128, loss: 1.7, afrac: 0.25)
        report.models.append(topK)
        report.circuits += [circuit(topK, "a", edges: 100), circuit(topK, "b", edges: nil)]
        let headline = SweepFrontier.headline(report)
        XCTAssertEqual(try XCTUnwrap(headline.ratio), 8, accuracy: 1e-9)
        XCTAssertEqual(headline.tasks, ["a", "b"])
        guard case let .bracketed(lower, upper, t) = headline.rows[0].match else { return XCTFail("not bracketed") }
        XCTAssertEqual([lower.model.role, upper.model.role], [.dense, .dense])
        XCTAssertEqual(t, 0.5, accuracy: 1e-9)
        XCTAssertEqual(topK.role, .denseWithAbsTopK)
        XCTAssertEqual(topK.pointLabel, "dense with AbsTopK")
        XCTAssertTrue(SweepFrontier.points(report).contains { $0.model == topK }, "on the plot as its own series")
        let html = HTMLReport(data: report).render()
        XCTAssertTrue(html.contains(">dense with AbsTopK</text>"), "its point on the frontier plot is labelled")
        XCTAssertTrue(HeadlineText.render(report).contains("dense with AbsTopK"))
    }

    func testSeedsGiveARatioPerSeedAndATIntervalOverThem() throws {
        let one = SweepFrontier.headline(data(seedData()))
        XCTAssertNil(one.interval)
        XCTAssertTrue(one.intervalNote?.contains("one seed: no confidence interval") == true)
        XCTAssertTrue(HeadlineText.render(data(seedData())).contains("one seed: no confidence interval"))
        // A second seed still training is named as such, not as a missing seed.
        var running = data(seedData(seed: 0), seedData(seed: 1))
        running.models = running.models.map { model in
            var model = model
            if model.seed == 1 { model.pretrainLoss = nil }
            return model
        }
        running.circuits.removeAll { $0.modelID.hasSuffix("-s1") }
        running.shards = [ReportShard(id: "train/d1-w64-a1-s1", kind: "train", state: "done", attempts: 1),
                          ReportShard(id: "train/d0.0625-w256-a0.25-s1", kind: "train", state: "leased", attempts: 1)]
        XCTAssertEqual(SweepFrontier.headline(running).intervalNote,
                       "seed 1 still running, only seed 0 so far: no confidence interval yet")
        running.shards[1].state = "failed"
        XCTAssertEqual(SweepFrontier.headline(running).intervalNote, "only seed 0 is bracketed: no confidence interval")

        // Seed 1's sparse circuits are twice as large: 4× there.
        let report = data(seedData(seed: 0), seedData(seed: 1, sparseEdges: (200, 50)))
        let headline = SweepFrontier.headline(report)
        XCTAssertEqual(headline.seedRatios.map(\.seed), [0, 1])
        XCTAssertEqual(headline.seedRatios[0].ratio, 8, accuracy: 1e-9)
        XCTAssertEqual(headline.seedRatios[1].ratio, 4, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(headline.ratio), sqrt(32), accuracy: 1e-9)
        // log ratios ln 8 and ln 4: standard error ln 2 / 2, t(0.975, 1 df) = 12.706
        let interval = try XCTUnwrap(headline.interval)
        XCTAssertEqual(interval.seeds, 2)
        XCTAssertEqual(interval.low, sqrt(32) * exp(-12.706 * log(2) / 2), accuracy: 1e-9)
        XCTAssertEqual(interval.high, sqrt(32) * exp(12.706 * log(2) / 2), accuracy: 1e-6)
        XCTAssertNil(headline.intervalNote)
        XCTAssertTrue(HeadlineText.render(report).contains("95% interval over 2 seeds"), HeadlineText.render(report))
        XCTAssertTrue(HTMLReport(data: report).render().contains("seed 0 8.0×, seed 1 4.0×"))

        // Each seed's sparse model is matched on its own seed's dense frontier: seed 1's dense
        // models alone bracket a sparse loss that seed 0's would not.
        var shifted = seedData(seed: 1, sparseEdges: (200, 50))
        shifted.models = shifted.models.map { m in
            var m = m
            m.pretrainLoss = m.pretrainLoss.map { $0 + 1 }
            return m
        }
        let separate = SweepFrontier.headline(data(seedData(seed: 0), shifted))
        XCTAssertEqual(separate.seedRatios.count, 2, "pooled, seed 1's dense models are off the frontier and nothing brackets its sparse loss")
        XCTAssertEqual(separate.seedRatios.last?.ratio ?? 0, 4, accuracy: 1e-9)
        // A seed whose sparse loss is not bracketed has no ratio, and one ratio gives no interval.
        var outside = seedData(seed: 1)
        outside.models[2].pretrainLoss = 1.2
        let single = SweepFrontier.headline(data(seedData(seed: 0), outside))
        XCTAssertEqual(single.seedRatios.map(\.seed), [0])
        XCTAssertNil(single.interval)
        XCTAssertEqual(single.intervalNote, "only seed 0 is bracketed: no confidence interval")
        XCTAssertEqual(try XCTUnwrap(single.ratio), 8, accuracy: 1e-9)
        XCTAssertEqual(SweepFrontier.studentT975(degreesOfFreedom: 1), 12.706)
        XCTAssertEqual(SweepFrontier.studentT975(degreesOfFreedom: 40), 2.021, accuracy: 0.002)
    }

    func testPerTaskRatiosOfNodesAndEdgesPerNodeWithFullModelLosses() throws {
        let report = data(seedData())
        let a = try XCTUnwrap(SweepFrontier.headline(report).perTask.first { $0.task == "a" })
        XCTAssertEqual(try XCTUnwrap(a.denseEdges), 800, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(a.denseNodes), sqrt(40.0 * 80), accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(a.edgeRatio), 8, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(a.nodeRatio), sqrt(3200) / 20, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(a.edgesPerNodeRatio), 8 / (sqrt(3200) / 20), accuracy: 1e-9)
        XCTAssertEqual(a.sparseCircuit?.fullLoss, 0.02)
        XCTAssertEqual(a.lowerCircuit?.fullLoss, 0.01, "the lower-loss dense model, d_model 128")
        XCTAssertEqual(a.upperCircuit?.fullLoss, 0.03)
        let html = HTMLReport(data: report).render()
        XCTAssertTrue(html.contains("Per task, at matched pretraining loss"))
        XCTAssertTrue(html.contains("<td>a</td><td class=\"model\">256 @ 0.0625 (afrac 0.25)</td><td>0</td><td>100</td><td>800</td><td>8.0×</td><td>20</td><td>56.6</td><td>2.8×</td><td>2.8×</td><td>0.0200</td><td>0.0100</td><td>0.0300</td>"), html)
        XCTAssertTrue(HeadlineText.render(report).contains("edges/node ratio"))
    }

    /// A task that one bracketing dense model missed has no dense size; the table says which model.
    func testPerTaskTableNamesTheDenseModelWithoutACircuit() throws {
        var parts = seedData()
        parts.circuits[1] = circuit(parts.models[0], "b", edges: nil)  // d_model 64 misses b
        let report = data(parts)
        let b = try XCTUnwrap(SweepFrontier.headline(report).perTask.first { $0.task == "b" })
        XCTAssertNil(b.denseEdges)
        let html = HTMLReport(data: report).render()
        XCTAssertTrue(html.contains("<td>unreachable for d_model 64, dense</td>"), html)
        XCTAssertFalse(html.contains("unreachable for d_model 128, dense"), "d_model 128 reached b")
        parts.circuits[3] = circuit(parts.models[1], "b", edges: nil)  // and so does d_model 128
        XCTAssertTrue(HTMLReport(data: data(parts)).render().contains("<td>unreachable for both</td>"))
    }

    func testCollapsedCircuitsAreNeverASize() throws {
        var parts = seedData()
        // The sparse model's masks collapsed on b: bisection kept nearly the whole model.
        parts.circuits[5] = circuit(parts.models[2], "b", edges: 187_513, nodes: 11_592, status: .collapsed)
        let report = data(parts)
        XCTAssertFalse(report.circuits[5].reachable)
        XCTAssertNil(report.circuits[5].countedEdges)
        let sparsePoint = try XCTUnwrap(SweepFrontier.points(report).first { $0.model.role == .sparse })
        XCTAssertEqual(sparsePoint.geometricMeanEdges, 100, accuracy: 1e-9)
        XCTAssertEqual(sparsePoint.tasksReached, 1)
        let headline = SweepFrontier.headline(report)
        XCTAssertEqual(headline.tasks, ["a"])
        XCTAssertEqual(try XCTUnwrap(headline.ratio), 8, accuracy: 1e-9)
        XCTAssertTrue(HTMLReport(data: report).render().contains("<td>b</td><td class=\"model\">256 @ 0.0625 (afrac 0.25)</td><td>0</td><td>collapsed</td>"))
        XCTAssertFalse(HTMLReport(data: report).render().contains("187513"))
    }

    func testWidthLeverAtAFixedBudgetOfNonzeros() throws {
        XCTAssertTrue(WidthLever.levers(data(seedData())).isEmpty, "one sparse width: no lever")
        var parts = seedData()
        let wide = sparse(512, density: 0.03125, loss: 1.62)
        parts.models.append(wide)
        parts.circuits += [circuit(wide, "a", edges: 300), circuit(wide, "b", edges: nil)]
        let report = data(parts)
        let levers = WidthLever.levers(report)
        XCTAssertEqual(levers.count, 1)
        XCTAssertEqual(levers[0].budget, .perNeuron)
        XCTAssertEqual(levers[0].value, 16)
        XCTAssertEqual(levers[0].rows.map(\.model.dModel), [256, 512])
        XCTAssertEqual(levers[0].tasks, ["a"])
        XCTAssertEqual(levers[0].rows[0].geometricMeanEdges ?? 0, 100, accuracy: 1e-9)
        XCTAssertEqual(levers[0].rows[1].geometricMeanEdges ?? 0, 300, accuracy: 1e-9)
        let html = HTMLReport(data: report).render()
        XCTAssertTrue(html.contains("<h3>density · d_model = 16, afrac 0.25</h3>"))
        XCTAssertTrue(html.contains("aria-label=\"Circuit size against width at a fixed budget\""))
        XCTAssertTrue(html.contains("d_model 512, density 0.03125, afrac 0.25, seed 0: loss 1.6200, 300 edges"), "each width's point carries its loss")
        let text = HeadlineText.render(report)
        XCTAssertTrue(text.contains("Width lever, density · d_model = 16, afrac 0.25:"), text)
        let row = text.split(separator: "\n").first { $0.hasPrefix("  512") }.map(String.init) ?? ""
        XCTAssertEqual(row.split(separator: " ").map(String.init), ["512", "0.03125", "0", "1.6200", "300", "1/2"], text)

        // The same nonzeros in total: density · d_model² = 8192.
        var total = seedData()
        let narrow = sparse(512, density: 0.03125, loss: 1.62), dense256 = sparse(256, density: 0.125, loss: 1.7)
        total.models = [narrow, dense256]
        total.circuits = [circuit(narrow, "a", edges: 10), circuit(dense256, "a", edges: 20)]
        let levers2 = WidthLever.levers(data(total))
        XCTAssertEqual(levers2.map(\.budget), [.total])
        XCTAssertEqual(levers2.first?.value, 8192)
    }

    func testRandomInitControlsAreShownAndKeptOffTheFrontier() throws {
        var parts = seedData()
        let control = sparse(256, density: 0.0625, loss: 6.2, randomInit: true)
        parts.models.append(control)
        parts.circuits += [circuit(control, "a", edges: nil, full: 2.5), circuit(control, "b", edges: 90_000, status: .collapsed)]
        let report = data(parts)
        XCTAssertEqual(control.identifier, "d0.0625-w256-a0.25-s0-random-init")
        XCTAssertFalse(SweepFrontier.points(report).contains { $0.model.randomInit })
        XCTAssertEqual(SweepFrontier.headline(report).tasks, ["a", "b"], "a control reaching nothing drops no task")
        XCTAssertEqual(try XCTUnwrap(SweepFrontier.headline(report).ratio), 8, accuracy: 1e-9)
        let html = HTMLReport(data: report).render()
        XCTAssertTrue(html.contains("<h3>Random initialisation</h3>"))
        XCTAssertTrue(html.contains("<td>d_model 256, density 0.0625, afrac 0.25, random init, seed 0</td><td>6.2000</td><td>a</td><td>100</td><td>unreachable</td><td>2.5000</td>"), html)
        XCTAssertTrue(html.contains("<td>b</td><td>25</td><td>collapsed</td>"))
        let text = HeadlineText.render(report)
        XCTAssertTrue(text.contains("Random-init control, d_model 256, density 0.0625, afrac 0.25, random init, seed 0: 0/2 tasks reached, 1 collapsed; trained: 2/2"), text)

        let none = data(seedData())
        XCTAssertTrue(HTMLReport(data: none).render().contains("no random-init control"))
    }

    func testNecessityIsShownWhenThePrunerRecordedIt() throws {
        var parts = seedData()
        XCTAssertTrue(HTMLReport(data: data(parts)).render().contains("did not record necessity"))
        parts.circuits[4].necessityLoss = 3.5
        let html = HTMLReport(data: data(parts)).render()
        XCTAssertFalse(html.contains("did not record necessity"))
        XCTAssertTrue(html.contains("<td>3.5000 / 0.0200</td>"), html)
    }
}
