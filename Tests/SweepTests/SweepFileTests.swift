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
        XCTAssertEqual(quick.grid.dModel.count, 3)
        XCTAssertGreaterThanOrEqual(quick.grid.task.count, 4)
        XCTAssertEqual(plan(quick).count, 1 + 3 + 3 * quick.grid.task.count, "prepare, three models, their circuits")
        XCTAssertNil(quick.simulate)

        let paper = try SweepSpec.load(from: repository.appendingPathComponent("sweeps/paper.yaml"))
        XCTAssertEqual(Set(paper.grid.task), Set(knownTasks))
        XCTAssertEqual(paper.grid.density.count, 5)
        XCTAssertEqual(paper.grid.dModel.count, 3)
        XCTAssertEqual(plan(paper).count, 1 + 12 + 120)
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
        let uncalibrated = try SweepSpec.parse("grid: {density: [0.5], d_model: [64], task: [var_swap]}\n"
                                               + "prune: {calibration: false, tau_initializations: 3}", file: "t.yaml")
        XCTAssertEqual(uncalibrated.prune.calibration, false)
        XCTAssertEqual(uncalibrated.prune.tauInitializations, 3)
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
        XCTAssertEqual(shards.count, 1 + 8 + 24)
        XCTAssertEqual(Set(shards.map(\.id)).count, shards.count)
        XCTAssertEqual(shards[0].id, "prepare")
        let train = shards.filter { $0.kind == "train" }
        XCTAssertTrue(train.allSatisfy { $0.dependencies == ["prepare"] })
        XCTAssertEqual(train.first { $0.params.point?.dModel == 128 }?.params.train?.learningRate, 0.005)
        XCTAssertEqual(train.first { $0.params.point?.dModel == 64 }?.params.train?.learningRate, 1.28e-2)
        let prune = try XCTUnwrap(shards.first { $0.id == "prune/d0.25-w64-a0.25-s1/if_equals" })
        XCTAssertEqual(prune.dependencies, ["prepare", "train/d0.25-w64-a0.25-s1"])
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
        XCTAssertEqual(spec.modelPoints.map(\.name), ["d1-w64-a0.25-s0", "d1-w128-a0.25-s0", "d0.25-w64-a0.25-s0", "d0.125-w128-a0.25-s0"])
        XCTAssertEqual(plan(spec).count, 1 + 4 + 4)
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
