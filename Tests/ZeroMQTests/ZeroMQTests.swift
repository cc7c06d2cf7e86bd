import Foundation
import XCTest
@testable import ZeroMQ

final class ZeroMQTests: XCTestCase {
    func testMultipartRoundTripOverInproc() throws {
        let context = try Context()
        let server = try context.socket(.pair)
        let client = try context.socket(.pair)
        try server.bind("inproc://roundtrip")
        try client.connect("inproc://roundtrip")
        try client.send([[1, 2, 3], [], Array("hello".utf8)])
        let frames = try XCTUnwrap(try server.receiveBytes())
        XCTAssertEqual(frames, [[1, 2, 3], [], Array("hello".utf8)])
        server.close()
        client.close()
    }

    func testRouterDealerOverTCPWithChosenPort() throws {
        let context = try Context()
        let router = try context.socket(.router)
        try router.setLinger(0)
        try router.bind("tcp://127.0.0.1:*")
        let endpoint = try router.lastEndpoint
        XCTAssertTrue(endpoint.hasPrefix("tcp://127.0.0.1:"), endpoint)
        XCTAssertNotEqual(endpoint, "tcp://127.0.0.1:0")

        let dealer = try context.socket(.dealer)
        try dealer.setLinger(0)
        try dealer.setRoutingID(Array("worker-1".utf8))
        XCTAssertEqual(try dealer.routingID(), Array("worker-1".utf8))
        try dealer.connect(endpoint)
        try dealer.send([Data("ping".utf8)])

        XCTAssertEqual(try poll([router], timeout: 5000), [true])
        let request = try XCTUnwrap(try router.receive())
        XCTAssertEqual(request, [Data("worker-1".utf8), Data("ping".utf8)])
        try router.send([request[0], Data("pong".utf8)])
        XCTAssertEqual(try poll([dealer], timeout: 5000), [true])
        XCTAssertEqual(try dealer.receive(), [Data("pong".utf8)])
        try dealer.disconnect(endpoint)
        try router.unbind(endpoint)
        router.close()
        dealer.close()
    }

    func testPublishSubscribeFiltersByPrefix() throws {
        let context = try Context()
        let publisher = try context.socket(.pub)
        let subscriber = try context.socket(.sub)
        try publisher.setLinger(0)
        try subscriber.setLinger(0)
        try publisher.bind("inproc://news")
        try subscriber.connect("inproc://news")
        try subscriber.setSubscribe(Array("sweep".utf8))
        try subscriber.setReceiveTimeout(50)
        // A subscription takes effect asynchronously: publish until it does.
        var received: [[UInt8]]?
        for _ in 0..<100 where received == nil {
            try publisher.send([Array("other".utf8)])
            try publisher.send([Array("sweep".utf8), [7]])
            received = try subscriber.receiveBytes()
        }
        XCTAssertEqual(received, [Array("sweep".utf8), [7]])
        publisher.close()
        subscriber.close()
    }

    func testIPCEndpoint() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("zmq-test-\(getpid()).ipc").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let context = try Context()
        let pull = try context.socket(.pull)
        let push = try context.socket(.push)
        try pull.setLinger(0)
        try push.setLinger(0)
        try pull.bind("ipc://\(path)")
        try push.connect("ipc://\(path)")
        try push.send([[42]])
        try pull.setReceiveTimeout(5000)
        XCTAssertEqual(try pull.receiveBytes(), [[42]])
        pull.close()
        push.close()
    }

    func testDontWaitAndPollTimeoutReturnNothing() throws {
        let context = try Context()
        let socket = try context.socket(.dealer)
        try socket.setLinger(0)
        try socket.bind("inproc://empty")
        XCTAssertNil(try socket.receive(dontWait: true))
        let started = Date()
        XCTAssertEqual(try poll([socket], timeout: 50), [false])
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.04)
        try socket.setReceiveTimeout(20)
        XCTAssertNil(try socket.receive())
        socket.close()
    }

    func testOptionsAndErrors() throws {
        let context = try Context()
        let socket = try context.socket(.router)
        try socket.setLinger(250)
        XCTAssertEqual(try socket.intOption(ZMQ_LINGER_OPTION), 250)
        try socket.setHeartbeat(interval: 1000, timeout: 5000, ttl: 5000)
        try socket.setRouterHandover(true)
        try socket.setSendHighWaterMark(10)
        try socket.setReceiveHighWaterMark(10)
        try socket.setImmediate(true)
        try socket.setReconnectInterval(100, max: 2000)
        XCTAssertEqual(zmqVersion().major, 4)
        XCTAssertThrowsError(try socket.bind("nonsense://x")) { error in
            XCTAssertTrue(String(describing: error).contains("bind nonsense://x"), "\(error)")
        }
        socket.close()
        XCTAssertTrue(socket.isClosed)
    }

    func testCurveKeysAndZAPAuthorisation() throws {
        let serverKeys = try CurveKeyPair.generate()
        XCTAssertEqual(serverKeys.publicKey.count, 40)
        XCTAssertEqual(try CurveKeyPair.publicKey(forSecret: serverKeys.secretKey), serverKeys.publicKey)
        let allowedClient = try CurveKeyPair.generate()
        let strangerClient = try CurveKeyPair.generate()

        let context = try Context()
        let zap = try ZAPHandler(context: context) { request in
            request.mechanism == "CURVE" && request.credentials.first.map(z85) == allowedClient.publicKey
        }
        defer { zap.stop() }
        let server = try context.socket(.router)
        try server.setLinger(0)
        try server.makeCurveServer(secretKey: serverKeys.secretKey)
        try server.bind("tcp://127.0.0.1:*")
        let endpoint = try server.lastEndpoint

        func client(_ keys: CurveKeyPair) throws -> Socket {
            let socket = try context.socket(.dealer)
            try socket.setLinger(0)
            try socket.makeCurveClient(serverPublicKey: serverKeys.publicKey, keyPair: keys)
            try socket.connect(endpoint)
            return socket
        }
        let stranger = try client(strangerClient)
        try stranger.send([Data("from stranger".utf8)])
        let friend = try client(allowedClient)
        try friend.send([Data("from friend".utf8)])

        XCTAssertEqual(try poll([server], timeout: 5000), [true])
        let message = try XCTUnwrap(try server.receive())
        XCTAssertEqual(message.last, Data("from friend".utf8))
        // The stranger's handshake was refused, so nothing else arrives.
        XCTAssertEqual(try poll([server], timeout: 300), [false])
        stranger.close()
        friend.close()
        server.close()
    }
}

private let ZMQ_LINGER_OPTION: Int32 = 17

/// Z85 encoding (RFC 32) of a 32-byte key, to compare with zmq_curve_keypair's output.
private func z85(_ bytes: [UInt8]) -> String {
    let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#")
    var out = ""
    for chunk in stride(from: 0, to: bytes.count, by: 4) {
        var value: UInt32 = 0
        for byte in bytes[chunk..<chunk + 4] { value = value << 8 | UInt32(byte) }
        var digits = [Character]()
        for _ in 0..<5 {
            digits.append(alphabet[Int(value % 85)])
            value /= 85
        }
        out += String(digits.reversed())
    }
    return out
}
