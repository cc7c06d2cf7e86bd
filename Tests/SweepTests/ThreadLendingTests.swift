import Foundation
import XCTest
@testable import Sweep

final class ThreadLendingTests: XCTestCase {
    private func shard(_ id: String, _ kind: String, at time: Double) -> ThreadLending.Shard {
        ThreadLending.Shard(key: LeaseKey(shard: id, attempt: 1), kind: kind, startedAt: time)
    }

    func testIdleSlotsGoToTrainingFirstThenTheEarliestStarted() {
        let prune = shard("prune/a/x", ShardKindName.prune, at: 1)
        let train = shard("train/b", ShardKindName.train, at: 5)
        let later = shard("prune/a/y", ShardKindName.prune, at: 3)
        let key = { (s: ThreadLending.Shard) in s.key }
        XCTAssertEqual(ThreadLending.allocate(running: [prune, train, later], idleSlots: 0),
                       [key(prune): 1, key(train): 1, key(later): 1])
        XCTAssertEqual(ThreadLending.allocate(running: [prune, train, later], idleSlots: 1),
                       [key(prune): 1, key(train): 2, key(later): 1])
        XCTAssertEqual(ThreadLending.allocate(running: [later, train, prune], idleSlots: 2),
                       [key(prune): 2, key(train): 2, key(later): 1])
        XCTAssertEqual(ThreadLending.allocate(running: [prune], idleSlots: 3), [key(prune): 4])
        XCTAssertEqual(ThreadLending.allocate(running: [], idleSlots: 3), [:])
        XCTAssertEqual(ThreadLending.allocate(running: [prune], idleSlots: -2), [key(prune): 1])
    }

    func testTheChildFollowsTheFileAndKeepsItsLastValueWhenTheFileIsBad() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lending-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent(ThreadAllowance.fileName)
        XCTAssertEqual(ThreadAllowance(path: nil, initial: 3).current(), 3)
        let allowance = ThreadAllowance(path: file.path, initial: 1)
        XCTAssertEqual(allowance.current(), 1, "no file yet")
        try ThreadAllowance.write(4, to: file)
        XCTAssertEqual(allowance.current(), 1, "read again only after the reread interval")
        Thread.sleep(forTimeInterval: ThreadAllowance.rereadSeconds + 0.05)
        XCTAssertEqual(allowance.current(), 4)
        for garbage in ["", "zero", "0", "-3"] {
            try Data(garbage.utf8).write(to: file)
            Thread.sleep(forTimeInterval: ThreadAllowance.rereadSeconds + 0.05)
            XCTAssertEqual(allowance.current(), 4, "'\(garbage)' is not an allowance")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), [ThreadAllowance.fileName],
                       "no temporary file is left")
    }
}
