import Foundation
import XCTest
@testable import Sweep

final class ProtocolTests: XCTestCase {
    func testEveryMessageRoundTrips() throws {
        let key = LeaseKey(shard: "train/d1-w64-a0.25-s0", attempt: 2)
        let hash = String(repeating: "ab", count: 32)
        let lease = Lease(shard: key.shard, attempt: 2, kind: "train", params: "{}",
                          inputs: ["prepare.data": ArtifactRef(hash: hash, size: 10)], resume: nil, resumeStep: nil)
        let messages: [Message] = [
            .hello(Hello(worker: "w", incarnation: "test", slots: 2, running: [key])), .request(3), .heartbeat,
            .progress(ProgressReport(lease: key, step: 5, total: 10, loss: 2.5)),
            .result(ResultReport(lease: key, outputs: ["checkpoint": hash], summary: "{\"x\":1}")),
            .failure(FailureReport(lease: key, error: "boom", logTail: "line")),
            .checkpoint(CheckpointReport(lease: key, hash: hash, step: 4)),
            .put(ChunkHeader(hash: hash, size: 3, offset: 0, kind: "data"), Data([1, 2, 3])),
            .get(ChunkRequest(hash: hash, offset: 0, length: 100)),
            .welcome(Welcome(heartbeatSeconds: 1, workerDeadSeconds: 5)), .leases([lease]), .ack(key), .cancel(key),
            .chunk(ChunkHeader(hash: hash, size: 3, offset: 1, kind: nil), Data([2, 3])),
            .missing(key, [hash]), .rehello, .refused("no"),
        ]
        for message in messages {
            XCTAssertEqual(try Message.decode(message.encoded()), message)
        }
    }

    func testGarbageIsAnErrorNotATrap() {
        var generator = SystemRandomNumberGenerator()
        let cases: [[Data]] = [
            [], [Data()], [Data("CSW".utf8)], [Data([0xff, 0, 1, 2, 3, 4])],
            [Data("CSW".utf8) + Data([1, 5]) + Data("{not json".utf8)],
            [Data("CSW".utf8) + Data([1, 99]) + Data("{}".utf8)],
            [Data("CSW".utf8) + Data([1, 8]) + Data("{\"hash\":\"x\",\"size\":1,\"offset\":0}".utf8)],
            [Data("CSW".utf8) + Data([1, 8]) + Data("{\"hash\":\"x\",\"size\":1,\"offset\":0}".utf8), Data([1, 2])],
            [Data("CSW".utf8) + Data([1, 3]) + Data("{}".utf8), Data([1])],
        ] + (0..<200).map { _ in [Data((0..<Int.random(in: 0...64)).map { _ in UInt8.random(in: 0...255, using: &generator) })] }
        for frames in cases {
            XCTAssertThrowsError(try Message.decode(frames))
        }
    }

    func testAnotherProtocolVersionIsRefusedByName() {
        var frame = Message.heartbeat.encoded()[0]
        frame[3] = WireProtocol.version + 1
        XCTAssertThrowsError(try Message.decode([frame])) { error in
            XCTAssertTrue("\(error)".contains("protocol version \(WireProtocol.version + 1) is not supported"), "\(error)")
        }
    }
}
