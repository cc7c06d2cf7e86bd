import Foundation
import XCTest
@testable import ZeroMQ

final class MonitorTests: XCTestCase {
    func testZ85RoundTripsAndRejectsWhatIsNotZ85() throws {
        // The test vector of RFC 32.
        let bytes: [UInt8] = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B]
        XCTAssertEqual(Z85.encode(bytes), "HelloWorld")
        XCTAssertEqual(Z85.decode("HelloWorld"), bytes)
        let key = try CurveKeyPair.generate().publicKey
        XCTAssertEqual(Z85.decode(key)?.count, 32)
        XCTAssertEqual(Z85.encode(Z85.decode(key)!), key)
        XCTAssertNil(Z85.encode([1, 2, 3]))
        XCTAssertNil(Z85.decode("Hello"+"Worl"))
        XCTAssertNil(Z85.decode("Hello Worl"))
        XCTAssertNil(Z85.decode("Hello\"orld"))
    }

    func testMonitorReportsConnectionAndHandshake() throws {
        let context = try Context()
        let server = try context.socket(.router)
        try server.setLinger(0)
        try server.bind("tcp://127.0.0.1:*")
        let client = try context.socket(.dealer)
        try client.setLinger(0)
        let monitor = try SocketMonitor(client)
        try client.connect(try server.lastEndpoint)
        var kinds: [SocketMonitor.Kind] = []
        let deadline = Date().addingTimeInterval(10)
        while !kinds.contains(.handshakeSucceeded) && Date() < deadline {
            if let event = monitor.nextEvent() { kinds.append(event.kind) } else { Thread.sleep(forTimeInterval: 0.01) }
        }
        XCTAssertEqual(kinds.first, .connected)
        XCTAssertTrue(kinds.contains(.handshakeSucceeded), "\(kinds)")
        monitor.close()
        monitor.close()
        client.close()
        server.close()
    }
}
