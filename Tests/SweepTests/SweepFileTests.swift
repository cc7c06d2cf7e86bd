import Foundation
import XCTest
@testable import Sweep

final class SweepFileTests: XCTestCase {
    private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func testShippedSweepFilesAreValid() throws {
        let quick = try SweepSpec.load(from: repository.appendingPathComponent("sweeps/quick.yaml"))
        XCTAssertEqual(quick.name, "quick")
        XCTAssertTrue(quick.grid.density.contains(1.0) && quick.grid.density.contains { $0 < 1 })
        XCTAssertGreaterThanOrEqual(quick.grid.task.count, 4)
        let models = quick.modelPoints.count, controls = quick.controlPoints.count
        XCTAssertTrue(quick.modelPoints.filter { $0.density == 1 }.contains { $0.afrac == 1 }, "the dense baseline")
        XCTAssertGreaterThanOrEqual(controls, 1)
        XCTAssertEqual(plan(quick).count, 1 + (models + controls) * (1 + quick.grid.task.count), "prepare, models and controls, their circuits")
        XCTAssertNil(quick.simulate)

        let paper = try SweepSpec.load(from: repository.appendingPathComponent("sweeps/paper.yaml"))
        XCTAssertEqual(Set(paper.grid.task), Set(knownTasks))
        XCTAssertEqual(paper.grid.density.count, 5)
        XCTAssertEqual(paper.grid.seed, [0, 1])
        XCTAssertEqual(paper.modelPoints.count, 14 * 2, "five dense widths and nine sparse models per seed")
        XCTAssertTrue(paper.modelPoints.filter { $0.density == 1 }.allSatisfy { $0.afrac == 1 })
        XCTAssertEqual(paper.controlPoints.count, 9, "one per sparse shape")
        XCTAssertEqual(plan(paper).count, 1 + (paper.modelPoints.count + 9) * 11)
    }

    /// Models are planned widest first, so the longest train shards are leased first; within one width
    /// the grid's order holds, the controls stay last, and every prune shard follows its model's train shard.
    func testPlanLeasesTheWidestModelsFirst() throws {
        let spec = try SweepSpec.parse("""
            grid:
              density: [1.0, 0.0625]
              d_model: [32, 64, 256]
              exclude: [{density: 0.0625, d_model: 32}, {density: 0.0625, d_model: 64}, {density: 1.0, d_model: 256}]
              seed: [0, 1]
              task: [if_equals]
            """, file: "t.yaml")
        let shards = plan(spec)
        XCTAssertEqual(shards.filter { $0.kind == "train" }.map(\.id), [
            "train/d0.0625-w256-a0.25-s0", "train/d0.0625-w256-a0.25-s1",
            "train/d1-w64-a1-s0", "train/d1-w64-a1-s1", "train/d1-w32-a1-s0", "train/d1-w32-a1-s1",
            "train/d0.0625-w256-a0.25-s0-random-init"])
        let position = Dictionary(uniqueKeysWithValues: shards.enumerated().map { ($0.element.id, $0.offset) })
        for shard in shards {
            for dependency in shard.dependencies {
                XCTAssertLessThan(try XCTUnwrap(position[dependency]), position[shard.id]!, "\(shard.id) after \(dependency)")
            }
        }
    }

    func testDefaultsFollowTheSpec() throws {
        let spec = try SweepSpec.parse("grid: {density: [0.5], d_model: [64], task: [var_swap]}", file: "t.yaml")
        XCTAssertEqual(spec.name, "sweep")
        XCTAssertEqual(spec.grid.afrac, [0.25])
        XCTAssertEqual(spec.model.context, 64)
        XCTAssertEqual(spec.data.vocabSize, 512)
        XCTAssertEqual(spec.prune.lambdas, [1e-4, 3e-4, 1e-3, 3e-3, 1e-2])
        XCTAssertEqual(spec.prune.headlineTarget, 0.15)
        XCTAssertNil(spec.prune.bisection, "unset: the trained-mask start")
        let reference = try SweepSpec.parse("grid: {density: [0.5], d_model: [64], task: [var_swap]}\nprune: {bisection: all_nodes}",
                                            file: "t.yaml")
        XCTAssertEqual(reference.prune.bisection, .allNodes)
        XCTAssertNil(spec.prune.calibration, "unset: calibrated")
        XCTAssertNil(spec.prune.tauInitializations)
        XCTAssertNil(spec.prune.tauNoise)
        XCTAssertNil(spec.prune.lambdaExtensions)
        let uncalibrated = try SweepSpec.parse("grid: {density: [0.5], d_model: [64], task: [var_swap]}\n"
                                               + "prune: {calibration: false, tau_initializations: 3, tau_noise: 0, lambda_extensions: 0}",
                                               file: "t.yaml")
        XCTAssertEqual(uncalibrated.prune.lambdaExtensions, 0)
        XCTAssertEqual(uncalibrated.prune.calibration, false)
        XCTAssertEqual(uncalibrated.prune.tauInitializations, 3)
        XCTAssertEqual(uncalibrated.prune.tauNoise, 0)
        XCTAssertEqual(spec.train.checkpointEvery, 0.1)
        XCTAssertEqual(spec.timeouts.workerDeadSeconds, 5)
    }

    func testPlanIsTheDAGOfSection5() throws {
        let spec = try SweepSpec.parse("""
            grid:
              density: [1.0, 0.25]
              d_model: [64, 128]
              seed: [0, 1]
              task: [var_swap, if_equals, bracket_brace]
            train:
              learning_rate_by_width: {128: 0.005}
            """, file: "t.yaml")
        let shards = plan(spec)
        XCTAssertEqual(shards.count, 1 + 8 + 24 + 2 * (1 + 3), "the grid's models, and one control per sparse shape")
        XCTAssertEqual(Set(shards.map(\.id)).count, shards.count)
        XCTAssertEqual(shards[0].id, "prepare")
        let train = shards.filter { $0.kind == "train" }
        XCTAssertTrue(train.allSatisfy { $0.dependencies == ["prepare"] })
        XCTAssertEqual(train.first { $0.params.point?.dModel == 128 }?.params.train?.learningRate, 0.005)
        XCTAssertEqual(train.first { $0.params.point?.dModel == 64 }?.params.train?.learningRate, 1.28e-2)
        let prune = try XCTUnwrap(shards.first { $0.id == "prune/d0.25-w64-a0.25-s1/if_equals" })
        XCTAssertEqual(prune.dependencies, ["prepare", "train/d0.25-w64-a0.25-s1"])
        XCTAssertNotNil(shards.first { $0.id == "train/d1-w128-a1-s0" }, "dense models have no AbsTopK")
        let control = try XCTUnwrap(shards.first { $0.id == "train/d0.25-w64-a0.25-s0-random-init" })
        XCTAssertEqual(control.params.point?.isRandomInit, true)
        XCTAssertEqual(shards.filter { $0.dependencies.contains(control.id) }.map(\.id).sorted(),
                       ["prune/d0.25-w64-a0.25-s0-random-init/bracket_brace", "prune/d0.25-w64-a0.25-s0-random-init/if_equals",
                        "prune/d0.25-w64-a0.25-s0-random-init/var_swap"])
        XCTAssertFalse(shards[1].params.encoded().contains("random"), "trained models' parameters are as before")
        XCTAssertEqual(prune.params.task, "if_equals")
        // Every dependency comes earlier in the plan.
        for (index, shard) in shards.enumerated() {
            for dependency in shard.dependencies {
                XCTAssertLessThan(shards.firstIndex { $0.id == dependency }!, index)
            }
        }
    }

    private func assertRejected(_ yaml: String, line: Int?, key: String, containing text: String,
                                file: StaticString = #filePath, testLine: UInt = #line) {
        XCTAssertThrowsError(try SweepSpec.parse(yaml, file: "bad.yaml"), file: file, line: testLine) { error in
            guard let error = error as? SweepFileError else {
                return XCTFail("unexpected \(error)", file: file, line: testLine)
            }
            XCTAssertEqual(error.file, "bad.yaml", file: file, line: testLine)
            XCTAssertEqual(error.line, line, "\(error)", file: file, line: testLine)
            XCTAssertEqual(error.key, key, "\(error)", file: file, line: testLine)
            XCTAssertTrue(error.description.contains(text), "\(error)", file: file, line: testLine)
        }
    }

    func testExcludeLeavesPointsOutOfTheGrid() throws {
        let spec = try SweepSpec.parse("""
            grid:
              density: [1.0, 0.25, 0.125]
              d_model: [64, 128]
              task: [var_swap]
              exclude:
                - {density: 0.125, d_model: 64}
                - {density: 0.25, d_model: 128}
            """, file: "t.yaml")
        XCTAssertEqual(spec.modelPoints.map(\.name), ["d1-w64-a1-s0", "d1-w128-a1-s0", "d0.25-w64-a0.25-s0", "d0.125-w128-a0.25-s0"])
        XCTAssertEqual(spec.controlPoints.map(\.name), ["d0.25-w64-a0.25-s0-random-init", "d0.125-w128-a0.25-s0-random-init"])
        XCTAssertEqual(plan(spec).count, 1 + 6 + 6)
    }

    func testDenseModelsAreTheBaselineWithExtraAbsTopKSeriesOnRequest() throws {
        let grid = "grid:\n  density: [1.0, 0.25]\n  d_model: [64]\n  afrac: [0.25, 0.5]\n  seed: [0, 1]\n  task: [var_swap]\n"
        let spec = try SweepSpec.parse(grid, file: "t.yaml")
        XCTAssertEqual(spec.modelPoints.map(\.name), ["d1-w64-a1-s0", "d1-w64-a1-s1", "d0.25-w64-a0.25-s0", "d0.25-w64-a0.25-s1",
                                                    "d0.25-w64-a0.5-s0", "d0.25-w64-a0.5-s1"])
        XCTAssertEqual(spec.controlPoints.map(\.name), ["d0.25-w64-a0.25-s0-random-init", "d0.25-w64-a0.5-s0-random-init"])
        let extra = try SweepSpec.parse(grid + "  dense_afrac: [1.0, 0.25]\n", file: "t.yaml")
        XCTAssertEqual(extra.grid.denseAfrac, [1, 0.25])
        XCTAssertEqual(extra.modelPoints.filter { $0.density == 1 }.map(\.name), ["d1-w64-a1-s0", "d1-w64-a1-s1", "d1-w64-a0.25-s0", "d1-w64-a0.25-s1"])
        assertRejected(grid + "  dense_afrac: [0.25]\n", line: 7, key: "grid.dense_afrac", containing: "must list 1.0")
        assertRejected("grid:\n  density: [0.25]\n  d_model: [64]\n  task: [var_swap]\n  dense_afrac: [1.0, 0.5]\n", line: 5,
                       key: "grid.dense_afrac", containing: "no dense model")
    }

    func testTheRandomInitControlCanBeTurnedOff() throws {
        let grid = "grid: {density: [1.0, 0.25], d_model: [64], task: [var_swap]}\n"
        XCTAssertTrue(try SweepSpec.parse(grid, file: "t.yaml").controls.randomInit, "on by default")
        let off = try SweepSpec.parse(grid + "controls: {random_init: false}\n", file: "t.yaml")
        XCTAssertTrue(off.controlPoints.isEmpty)
        XCTAssertEqual(plan(off).count, 1 + 2 + 2)
        assertRejected(grid + "controls: {random_init: sometimes}\n", line: 2, key: "controls.random_init", containing: "true or false")
        assertRejected(grid + "controls: {necessity: true}\n", line: 2, key: "controls.necessity", containing: "unknown key")
    }

    func testSpecsStoredBeforeDenseAfracAndControlsStillDecode() throws {
        let spec = try SweepSpec.parse("grid: {density: [1.0, 0.25], d_model: [64], task: [var_swap]}", file: "t.yaml")
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(spec)) as! [String: Any]
        var grid = json["grid"] as! [String: Any]
        XCTAssertNotNil(grid.removeValue(forKey: "denseAfrac"))
        json["grid"] = grid
        XCTAssertNotNil(json.removeValue(forKey: "controls"))
        let old = try JSONDecoder().decode(SweepSpec.self, from: JSONSerialization.data(withJSONObject: json))
        XCTAssertEqual(old, spec)
    }

    func testBadFilesAreRejectedWithFileLineAndKey() {
        let grid = "grid:\n  density: [0.5]\n  d_model: [64]\n  task: [var_swap]\n"
        assertRejected(grid + "trian:\n  steps: 3\n", line: 5, key: "trian", containing: "unknown key")
        assertRejected(grid + "train:\n  steps: 3\n  stpes: 4\n", line: 7, key: "train.stpes", containing: "unknown key")
        assertRejected(grid + "train:\n  steps: many\n", line: 6, key: "train.steps", containing: "expected an integer")
        assertRejected(grid + "prune:\n  lambdas: 0.1\n", line: 6, key: "prune.lambdas", containing: "expected a list")
        assertRejected("grid:\n  density: []\n  d_model: [64]\n  task: [var_swap]\n", line: 2, key: "grid.density",
                       containing: "empty")
        assertRejected("grid:\n  density: [0.5]\n  d_model: [64]\n  task:\n    - var_swap\n    - var_swapp\n",
                       line: 6, key: "grid.task", containing: "unknown task 'var_swapp'")
        assertRejected("grid:\n  density: [0.5]\n  task: [var_swap]\n", line: 1, key: "grid.d_model", containing: "missing")
        assertRejected("grid:\n  density: [1.5]\n  d_model: [64]\n  task: [var_swap]\n", line: 2, key: "grid.density",
                       containing: "at most 1")
        assertRejected("grid:\n  density: [0.125]\n  d_model: [64]\n  task: [var_swap]\n", line: 2, key: "grid.density",
                       containing: "floor")
        assertRejected(grid + "timeouts:\n  heartbeat_seconds: 2\n  worker_dead_seconds: 1\n", line: 7,
                       key: "timeouts.worker_dead_seconds", containing: "longer")
        assertRejected(grid + "prune:\n  bisection: middle\n", line: 6, key: "prune.bisection", containing: "trained_mask or all_nodes")
        assertRejected(grid + "prune:\n  calibration: maybe\n", line: 6, key: "prune.calibration", containing: "true or false")
        assertRejected(grid + "prune:\n  tau_initializations: 0\n", line: 6, key: "prune.tau_initializations", containing: "at least 1")
        assertRejected(grid + "prune:\n  tau_noise: -0.01\n", line: 6, key: "prune.tau_noise", containing: "at least 0")
        assertRejected(grid + "prune:\n  lambda_extensions: -1\n", line: 6, key: "prune.lambda_extensions", containing: "at least 0")
        let floor = "grid:\n  density: [0.25, 0.125]\n  d_model: [64, 128]\n  task: [var_swap]\n"
        assertRejected(floor, line: 2, key: "grid.density", containing: "grid.exclude")
        assertRejected(floor + "  exclude:\n    - {density: 0.5}\n", line: 6, key: "grid.exclude", containing: "matches no point")
        assertRejected(floor + "  exclude:\n    - {d_model: 64, width: 3}\n", line: 6, key: "grid.exclude[1].width", containing: "unknown key")
        assertRejected(floor + "  exclude:\n    - {}\n", line: 6, key: "grid.exclude[1]", containing: "at least one")
        assertRejected(floor + "  exclude:\n    - {density: 0.125}\n    - {density: 0.25}\n", line: 5, key: "grid.exclude",
                       containing: "no model")
        assertRejected("grid: [1, 2\n", line: 2, key: "", containing: "not valid YAML")
        assertRejected("name: [x]\n" + grid, line: 1, key: "name", containing: "expected a string")
    }
}
