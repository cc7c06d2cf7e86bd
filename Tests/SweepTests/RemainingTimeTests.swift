import XCTest
@testable import Sweep

/// The progress line's estimate, from made-up shard histories.
final class RemainingTimeTests: XCTestCase {
    private func shard(_ id: String, _ state: ShardState, step: Int? = nil, of total: Int? = nil) -> ShardStatus {
        ShardStatus(id: id, kind: String(id.prefix { $0 != "/" }), state: state, attempts: 1, maxAttempts: 3, worker: nil,
                    step: step, totalSteps: total, loss: nil, error: nil, logTail: nil, summary: nil)
    }

    func testTheSeedIsTakenOutOfAShardsId() {
        XCTAssertEqual(RemainingTime.withoutSeed("train/d1-w64-a1-s12"), "train/d1-w64-a1")
        XCTAssertEqual(RemainingTime.withoutSeed("prune/d0.0625-w256-a0.25-s1/var_swap"), "prune/d0.0625-w256-a0.25/var_swap")
        XCTAssertEqual(RemainingTime.withoutSeed("train/d0.0625-w256-a0.25-s0-random-init"), "train/d0.0625-w256-a0.25-random-init")
        XCTAssertEqual(RemainingTime.withoutSeed("prepare"), "prepare")
    }

    func testRunningShardsKeepTheirPaceAndWaitingOnesTakeWhatTheirLikeTook() throws {
        var remaining = RemainingTime()
        let done = [shard("prepare", .done), shard("train/d1-w32-a1-s0", .done), shard("prune/d1-w32-a1-s0/a", .done),
                    shard("prune/d1-w32-a1-s0/b", .done)]
        let busy = ["prepare": 5.0, "train/d1-w32-a1-s0": 400, "prune/d1-w32-a1-s0/a": 100, "prune/d1-w32-a1-s0/b": 300]
        func shards(step: Int) -> [ShardStatus] {
            done + [shard("train/d1-w256-a1-s0", .leased, step: step, of: 20_000), shard("train/d1-w32-a1-s1", .pending),
                    shard("prune/d1-w32-a1-s1/a", .pending), shard("prune/d1-w256-a1-s0/a", .pending)]
        }
        // The first sight of the running shard's progress gives no pace yet.
        let first = try XCTUnwrap(remaining.estimate(shards: shards(step: 1_000), busySeconds: busy, started: [:], slots: 2, now: 0))
        XCTAssertFalse(first.isLowerBound)
        XCTAssertEqual(first.seconds, (400 + 400 + 100 + 200) / 2, accuracy: 1e-9,
                       "the mean of finished trains for the running one, seed 0's like for the other train and the first prune, "
                       + "the prunes' mean for the last")
        // 1,000 steps in 100 s: 18,000 steps left take 1,800 s, longer than everything else shared by two slots.
        let later = try XCTUnwrap(remaining.estimate(shards: shards(step: 2_000), busySeconds: busy, started: [:], slots: 2, now: 100))
        XCTAssertFalse(later.isLowerBound)
        XCTAssertEqual(later.seconds, 1_800, accuracy: 1e-6, "bounded below by the longest shard")
        let oneSlot = try XCTUnwrap(remaining.estimate(shards: shards(step: 2_000), busySeconds: busy, started: [:], slots: 1, now: 100))
        XCTAssertEqual(oneSlot.seconds, 1_800 + 400 + 100 + 200, accuracy: 1e-6, "one slot runs them one after another")
    }

    func testAStartedShardWithoutStepsCountsItsElapsedTime() throws {
        var remaining = RemainingTime()
        let shards = [shard("prune/d1-w32-a1-s0/a", .done), shard("prune/d1-w32-a1-s0/b", .leased)]
        let estimate = try XCTUnwrap(remaining.estimate(shards: shards, busySeconds: ["prune/d1-w32-a1-s0/a": 300],
                                                        started: ["prune/d1-w32-a1-s0/b": 1_000], slots: 2, now: 1_120))
        XCTAssertEqual(estimate.seconds, 180, accuracy: 1e-9)
        let partly = try XCTUnwrap(remaining.estimate(
            shards: [shard("prune/d1-w32-a1-s0/a", .done), shard("train/d1-w64-a1-s0", .pending), shard("prune/d1-w32-a1-s0/b", .pending)],
            busySeconds: ["prune/d1-w32-a1-s0/a": 100], started: [:], slots: 2, now: 0))
        XCTAssertEqual(partly, RemainingTime.Estimate(seconds: 100, isLowerBound: true), "no train has finished: at least the prune")
        XCTAssertNil(remaining.estimate(shards: [shard("prepare", .done)], busySeconds: [:], started: [:], slots: 2, now: 0),
                     "nothing left")
        XCTAssertNil(remaining.estimate(shards: [shard("prepare", .pending)], busySeconds: [:], started: [:], slots: 2, now: 0),
                     "nothing known")
    }
}
