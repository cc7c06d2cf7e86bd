import Foundation
import XCTest
@testable import Sweep

/// The report's details read from a real store: attempt times and workers, training curves,
/// circuit analyses, and whether the sweep still runs.
final class ReportDetailsTests: XCTestCase {
    var runDirectory: URL!

    override func setUpWithError() throws {
        runDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("report-details-\(UUID().uuidString)")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: runDirectory)
    }

    private func finish(_ tx: StoreTransaction, _ lease: Lease, outputs: [String: Data], now: Double) throws {
        var hashes: [String: String] = [:]
        let artifacts = runDirectory.appendingPathComponent("artifacts")
        try FileManager.default.createDirectory(at: artifacts, withIntermediateDirectories: true)
        for (name, data) in outputs {
            let hash = SHA256.hex(data)
            try data.write(to: artifacts.appendingPathComponent(hash))
            try tx.registerArtifact(hash: hash, size: data.count, kind: name, now: now)
            hashes[name] = hash
        }
        XCTAssertEqual(try tx.recordResult(lease.key, outputs: hashes, summary: "{}", now: now), .recorded)
    }

    func testReadsTimesCurvesAnalysesAndWhetherTheSweepRuns() throws {
        let spec = try SweepSpec.parse("""
            name: details
            grid: {density: [1.0, 0.25], d_model: [64], task: [single_double_quote]}
            """, file: "details.yaml")
        let store = try newStore(runDirectory)
        try store.write { tx in try tx.createSweep(spec, shards: plan(spec), now: 0) }
        let curve = TrainingCurve(rows: [.init(step: 1, trainLoss: 6, heldOutLoss: 5.5, density: 1, embedDensity: 1, learningRate: 0.01)])
        try store.write { tx in
            for lease in try tx.lease(owner: "w1", count: 1, now: 10, expiry: 100) {
                try finish(tx, lease, outputs: ["tokenizer": Data("t".utf8)], now: 12.5)
            }
            for lease in try tx.lease(owner: "w2", count: 2, now: 20, expiry: 200) {
                // The dense model's curve is good; the sparse one's is not a curve.
                let text = lease.shard.contains("d1-") ? curve.csv() : "step,loss\n1,2\n"
                try finish(tx, lease, outputs: ["checkpoint": Data(lease.shard.utf8), "training_curve": Data(text.utf8)], now: 80)
            }
            for lease in try tx.lease(owner: "w1", count: 2, now: 90, expiry: 300) where lease.shard.contains("d1-") {
                try finish(tx, lease, outputs: ["curve": Data("{}".utf8), "analysis": Data(#"{"nodes": []}"#.utf8)], now: 95)
            }
        }
        var details = try ReportDetails.load(runDirectory: runDirectory)
        XCTAssertEqual(details.shardTimes["prepare"], ShardTime(worker: "w1", startedAt: 10, endedAt: 12.5))
        XCTAssertEqual(details.seconds(ofShard: "prepare"), 2.5)
        XCTAssertEqual(details.shardTimes["train/d1-w64-a0.25-s0"]?.worker, "w2")
        XCTAssertEqual(details.trainingCurves.keys.sorted(), ["d1-w64-a0.25-s0"])
        XCTAssertEqual(details.trainingCurves["d1-w64-a0.25-s0"], curve)
        XCTAssertEqual(details.problems.count, 1)
        XCTAssertTrue(details.problems[0].contains("shard train/d0.25-w64-a0.25-s0: cannot read its training curve"), details.problems[0])
        XCTAssertEqual(details.analyses.keys.sorted(), ["d1-w64-a0.25-s0__single_double_quote"])
        XCTAssertTrue(details.running, "the sparse model's prune shard is still to run")
        let leased = try XCTUnwrap(details.shardTimes.first { $0.value.endedAt == nil })
        details.now = 100
        XCTAssertEqual(details.seconds(ofShard: leased.key), 100 - leased.value.startedAt, "a running shard's duration so far")

        try store.write { tx in
            for active in try tx.activeLeases() {
                XCTAssertEqual(try tx.recordResult(active.lease, outputs: [:], summary: "{}", now: 101), .recorded)
            }
        }
        XCTAssertFalse(try ReportDetails.load(runDirectory: runDirectory).running)
        var writes: [String] = []
        try RunReport.watch(runDirectory: runDirectory, every: 0.01) { writes.append($0) }
        XCTAssertEqual(writes.count, 1, "a finished sweep is written once")
        XCTAssertTrue(writes[0].contains("warning: shard train/d0.25-w64-a0.25-s0: cannot read its training curve"), writes[0])
        XCTAssertTrue(FileManager.default.fileExists(atPath: runDirectory.appendingPathComponent("report/index.html").path))
    }
}
