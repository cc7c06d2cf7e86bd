import Foundation
import XCTest
@testable import Sweep

/// The report read from a real store: shards leased and recorded through the store's API.
final class ReportLoaderTests: XCTestCase {
    var runDirectory: URL!

    override func setUpWithError() throws {
        runDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("report-run-\(UUID().uuidString)")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: runDirectory)
    }

    private func curve(task: String, edges: Int?) -> Data {
        let reached = edges.map { #"{"target": 0.15, "reachable": true, "reached_loss": 0.12, "node_count": 30, "edge_count": \#($0), "task": "\#(task)"}"# }
            ?? #"{"target": 0.15, "reachable": false, "task": "\#(task)"}"#
        return Data(#"{"task": "\#(task)", "full_loss": 0.05, "seconds": 1, "runs": [], "points": [\#(reached), {"target": 0.05, "reachable": false, "task": "\#(task)"}]}"#.utf8)
    }

    private func finish(_ tx: StoreTransaction, _ lease: Lease, outputs: [String: Data], summary: [String: Double]) throws {
        var hashes: [String: String] = [:]
        let artifacts = runDirectory.appendingPathComponent("artifacts")
        try FileManager.default.createDirectory(at: artifacts, withIntermediateDirectories: true)
        for (name, data) in outputs {
            let hash = SHA256.hex(data)
            try data.write(to: artifacts.appendingPathComponent(hash))
            try tx.registerArtifact(hash: hash, size: data.count, kind: name, now: 1)
            hashes[name] = hash
        }
        XCTAssertEqual(try tx.recordResult(lease.key, outputs: hashes,
                                           summary: encodeSummary(summary), now: 2), .recorded)
    }

    func testLoadsModelsCircuitsAndFailuresFromTheStore() throws {
        let spec = try SweepSpec.parse("""
            name: loader
            grid:
              density: [1.0, 0.25]
              d_model: [64]
              task: [single_double_quote, bracket_counting]
            retries:
              max_attempts: 1
            controls:
              random_init: false
            """, file: "loader.yaml")
        let store = try newStore(runDirectory)
        try store.write { tx in try tx.createSweep(spec, shards: plan(spec), now: 0) }
        // prepare, then both models (the sparse one cannot be trained), then the dense model's prunes
        try store.write { tx in
            for lease in try tx.lease(owner: "w", count: 10, now: 1, expiry: 100) {
                try finish(tx, lease, outputs: ["data": Data("data".utf8)], summary: [:])
            }
            for lease in try tx.lease(owner: "w", count: 10, now: 1, expiry: 100) {
                if lease.shard.contains("d1-") {
                    try finish(tx, lease, outputs: ["checkpoint": Data("model".utf8)],
                               summary: ["pretrain_loss": 1.25, "nonzero_weights": 168_256])
                } else {
                    _ = try tx.recordFailure(lease.key, error: "killed by signal 9",
                                             logTail: nil, retries: spec.retries, now: 2)
                }
            }
            for lease in try tx.lease(owner: "w", count: 10, now: 3, expiry: 100) {
                let task = lease.shard.hasSuffix("bracket_counting") ? "bracket_counting" : "single_double_quote"
                try finish(tx, lease, outputs: ["curve": curve(task: task, edges: task == "bracket_counting" ? 420 : nil)],
                           summary: [:])
            }
        }

        let data = try ReportData.load(runDirectory: runDirectory)
        XCTAssertEqual(data.sweepName, "loader")
        XCTAssertEqual(data.models.count, 2)
        let dense = try XCTUnwrap(data.models.first { $0.isDense })
        XCTAssertEqual(dense.pretrainLoss, 1.25)
        XCTAssertEqual(dense.nonzeroWeights, 168_256)
        XCTAssertEqual(dense.embedDensity, 1)
        let sparse = try XCTUnwrap(data.models.first { !$0.isDense })
        XCTAssertNil(sparse.pretrainLoss)
        XCTAssertEqual(sparse.embedDensity, 1, "min(1, 4 * 0.25)")
        XCTAssertEqual(data.circuits.count, 4)
        let reached = data.circuits.filter(\.reachable)
        XCTAssertEqual(reached.count, 1)
        XCTAssertEqual(reached[0].edges, 420)
        XCTAssertEqual(reached[0].modelID, dense.identifier)
        XCTAssertNotNil(reached[0].circuitJSON)
        let failed = data.shards.filter { $0.state == "failed" }
        XCTAssertEqual(failed.count, 3, "the sparse train shard and its two prune shards")
        XCTAssertTrue(failed.contains { $0.error?.contains("killed by signal 9") == true })

        let out = runDirectory.appendingPathComponent("report")
        try ReportWriter(data: data).write(to: out)
        let csv = try String(contentsOf: out.appendingPathComponent("frontier.csv"), encoding: .utf8)
        XCTAssertTrue(csv.contains("1,1,64,1,0,bracket_counting,1.25,0.15,0.12,30,420,true,reachable,0.05,,dense"), csv)
        XCTAssertTrue(HeadlineText.render(data).contains("420"))
    }

    func testAnUnreadableCurveIsReportedOnItsShardAndTheRestStillLoads() throws {
        let spec = try SweepSpec.parse("""
            name: broken
            grid:
              density: [1.0]
              d_model: [64]
              task: [single_double_quote]
            """, file: "broken.yaml")
        let store = try newStore(runDirectory)
        try store.write { tx in try tx.createSweep(spec, shards: plan(spec), now: 0) }
        try store.write { tx in
            for _ in 0..<3 {
                for lease in try tx.lease(owner: "w", count: 10, now: 1, expiry: 100) {
                    let name = lease.kind == "prune" ? "curve" : "out"
                    try finish(tx, lease, outputs: [name: Data("not json \(lease.shard)".utf8)],
                               summary: ["pretrain_loss": 2])
                }
            }
        }
        let data = try ReportData.load(runDirectory: runDirectory)
        XCTAssertEqual(data.models.first?.pretrainLoss, 2)
        XCTAssertTrue(data.circuits.isEmpty)
        let prune = try XCTUnwrap(data.shards.first { $0.kind == "prune" })
        XCTAssertTrue(prune.error?.contains("not a frontier document") == true, prune.error ?? "no error")
    }

    func testLoadsControlsStatusAndNecessityWhenTheCurveHasThem() throws {
        let spec = try SweepSpec.parse("""
            name: controls
            grid:
              density: [1.0, 0.25]
              d_model: [64]
              task: [var_swap]
            """, file: "controls.yaml")
        let store = try newStore(runDirectory)
        try store.write { tx in try tx.createSweep(spec, shards: plan(spec), now: 0) }
        let curves = [
            "prune/d1-w64-a1-s0/var_swap":
                #"{"task": "var_swap", "full_loss": 0.04, "points": [{"target": 0.15, "reachable": true, "status": "reachable", "node_count": 40, "edge_count": 300, "necessity_loss": 2.75}]}"#,
            "prune/d0.25-w64-a0.25-s0/var_swap":
                #"{"task": "var_swap", "full_loss": 0.06, "points": [{"target": 0.15, "reachable": true, "status": "collapsed", "full_loss": 0.07, "node_count": 900, "edge_count": 99999}]}"#,
            "prune/d0.25-w64-a0.25-s0-random-init/var_swap":
                #"{"task": "var_swap", "full_loss": 3.1, "points": [{"target": 0.15, "reachable": false}]}"#,
        ]
        try store.write { tx in
            for _ in 0..<3 {
                for lease in try tx.lease(owner: "w", count: 10, now: 1, expiry: 100) {
                    switch lease.kind {
                    case "prune": try finish(tx, lease, outputs: ["curve": Data(curves[lease.shard]!.utf8)], summary: [:])
                    case "train":
                        try finish(tx, lease, outputs: ["checkpoint": Data(lease.shard.utf8)],
                                   summary: ["pretrain_loss": lease.shard.hasSuffix("random-init") ? 6.2 : 1.5])
                    default: try finish(tx, lease, outputs: ["data": Data("data".utf8)], summary: [:])
                    }
                }
            }
        }
        let data = try ReportData.load(runDirectory: runDirectory)
        XCTAssertEqual(data.models.map(\.role), [.dense, .sparse, .randomInit])
        XCTAssertEqual(data.controlModels.first?.pretrainLoss, 6.2)
        let byModel = Dictionary(uniqueKeysWithValues: data.circuits.map { ($0.modelID, $0) })
        let dense = try XCTUnwrap(byModel["d1-w64-a1-s0"])
        XCTAssertEqual(dense.status, .reachable)
        XCTAssertEqual(dense.necessityLoss, 2.75)
        XCTAssertEqual(dense.fullLoss, 0.04, "the document's full loss stands in for the point's")
        let sparse = try XCTUnwrap(byModel["d0.25-w64-a0.25-s0"])
        XCTAssertEqual(sparse.status, .collapsed)
        XCTAssertFalse(sparse.reachable)
        XCTAssertEqual(sparse.fullLoss, 0.07)
        XCTAssertNil(sparse.necessityLoss)
        XCTAssertEqual(byModel["d0.25-w64-a0.25-s0-random-init"]?.status, .unreachable)
        XCTAssertEqual(data.shards.filter { $0.error != nil }.count, 0)
    }

    func testAnUnknownCircuitStatusIsReportedOnItsShard() throws {
        let spec = try SweepSpec.parse("grid: {density: [1.0], d_model: [64], task: [var_swap]}", file: "s.yaml")
        let store = try newStore(runDirectory)
        try store.write { tx in try tx.createSweep(spec, shards: plan(spec), now: 0) }
        try store.write { tx in
            for _ in 0..<3 {
                for lease in try tx.lease(owner: "w", count: 10, now: 1, expiry: 100) {
                    let curve = #"{"task": "var_swap", "points": [{"target": 0.15, "reachable": true, "status": "melted"}]}"#
                    try finish(tx, lease, outputs: [lease.kind == "prune" ? "curve" : "out": Data(curve.utf8)], summary: ["pretrain_loss": 2])
                }
            }
        }
        let prune = try XCTUnwrap(try ReportData.load(runDirectory: runDirectory).shards.first { $0.kind == "prune" })
        XCTAssertTrue(prune.error?.contains("status 'melted'") == true, prune.error ?? "no error")
    }
}
