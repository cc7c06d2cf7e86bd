import Foundation
import Logging
import XCTest
@testable import Sweep
import ZeroMQ

/// Key files, the authorised-keys file, and a CURVE coordinator driven in-process on loopback.
final class CurveTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("sweep-curve-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    // MARK: files

    func testKeyFilesRoundTripWithOwnerOnlySecret() throws {
        let written = try CurveKeyFile.generate(name: "w1", to: directory)
        XCTAssertEqual(written.secret.lastPathComponent, "w1.key")
        XCTAssertEqual(written.public.lastPathComponent, "w1.pub")
        let secretMode = try FileManager.default.attributesOfItem(atPath: written.secret.path)[.posixPermissions] as? NSNumber
        XCTAssertEqual(secretMode?.intValue, 0o600)
        XCTAssertNil(CurveKeyFile.permissionWarning(written.secret))
        let keyPair = try CurveKeyFile.readKeyPair(written.secret)
        XCTAssertEqual(keyPair.publicKey, written.publicKey)
        XCTAssertEqual(try CurveKeyPair.publicKey(forSecret: keyPair.secretKey), keyPair.publicKey)
        // The .pub file is an authorised-keys line and a --server-key argument.
        XCTAssertEqual(try AuthorizedKeys(contentsOf: written.public).entries,
                       [AuthorizedKeys.Entry(key: written.publicKey, name: "w1")])
        XCTAssertEqual(try CurveKeyFile.readPublicKey(written.public.path), written.publicKey)
        XCTAssertEqual(try CurveKeyFile.readPublicKey(written.secret.path), written.publicKey)
        XCTAssertEqual(try CurveKeyFile.readPublicKey(written.publicKey), written.publicKey)

        XCTAssertThrowsError(try CurveKeyFile.generate(name: "w1", to: directory)) { error in
            XCTAssertTrue("\(error)".contains("already exists"), "\(error)")
        }
        XCTAssertNoThrow(try CurveKeyFile.generate(name: "w1", to: directory, overwrite: true))
        XCTAssertNotEqual(try CurveKeyFile.readKeyPair(written.secret), keyPair)
        chmod(written.secret.path, 0o644)
        XCTAssertNotNil(CurveKeyFile.permissionWarning(written.secret))
    }

    func testBrokenKeyFilesAreNamedWithTheirLine() throws {
        let pair = try CurveKeyPair.generate()
        let other = try CurveKeyPair.generate()
        let cases: [(String, String)] = [
            ("public-key = \"\(pair.publicKey)\"\n", "no secret-key"),
            ("secret-key = \"short\"\n", ":1: secret-key is not a 40-character Z85 key"),
            ("# ok\nsecret = \"\(pair.secretKey)\"\n", ":2: expected public-key"),
            ("public-key = \"\(other.publicKey)\"\nsecret-key = \"\(pair.secretKey)\"\n", "does not belong"),
        ]
        for (index, (text, expected)) in cases.enumerated() {
            let url = directory.appendingPathComponent("bad\(index).key")
            try text.write(to: url, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try CurveKeyFile.readKeyPair(url)) { error in
                XCTAssertTrue("\(error)".contains(url.path) && "\(error)".contains(expected), "\(error)")
            }
        }
        XCTAssertThrowsError(try CurveKeyFile.readPublicKey(directory.appendingPathComponent("none.pub").path))
    }

    func testAuthorizedKeysFileSyntax() throws {
        let a = try CurveKeyPair.generate().publicKey
        let b = try CurveKeyPair.generate().publicKey
        let keys = try AuthorizedKeys(parsing: "# workers\n\n  \(a) gpu-1 rack 2\n\(b)\r\n# \(a)x\n", file: "auth")
        XCTAssertEqual(keys.entries, [.init(key: a, name: "gpu-1 rack 2"), .init(key: b, name: nil)])
        XCTAssertEqual(keys.entry(for: b)?.key, b)
        XCTAssertNil(keys.entry(for: try CurveKeyPair.generate().publicKey))
        // A key starting with '#' is a key, not a comment.
        let hashKey = "#" + String(a.dropFirst())
        if isCurveKey(hashKey) {
            XCTAssertEqual(try AuthorizedKeys(parsing: hashKey, file: "auth").entries.count, 1)
        }
        XCTAssertThrowsError(try AuthorizedKeys(parsing: "\(a)\nnot-a-key w2\n", file: "auth.txt")) { error in
            XCTAssertTrue("\(error)".hasPrefix("auth.txt:2: 'not-a-key'"), "\(error)")
        }
    }

    func testLoopbackEndpoints() {
        for endpoint in ["tcp://127.0.0.1:5555", "tcp://127.3.4.5:*", "tcp://localhost:1", "tcp://[::1]:5555",
                         "tcp://lo:5555", "ipc:///tmp/x", "inproc://x", "tcp://10.0.0.1;127.0.0.1:5"] {
            XCTAssertTrue(isLoopbackEndpoint(endpoint), endpoint)
        }
        for endpoint in ["tcp://0.0.0.0:5555", "tcp://*:5555", "tcp://10.1.2.3:5555", "tcp://eth0:5555",
                         "tcp://[::]:5555", "tcp://127.0.0.1.evil.org:5555", "tcp://1270.0.0.1:1", "udp://127.0.0.1:5",
                         "tcp://127.0.0.1", "tcp://host.example.org:5555"] {
            XCTAssertFalse(isLoopbackEndpoint(endpoint), endpoint)
        }
    }

    // MARK: coordinator

    private func preparedRunDirectory() throws -> URL {
        let spec = try SweepSpec.parse("""
            name: curve
            grid:
              density: [1.0]
              d_model: [64]
              task: [var_swap]
            simulate:
              steps: 2
              step_seconds: 0
            """, file: "curve.yaml")
        let run = directory.appendingPathComponent("run")
        try RunDirectory(run).create(spec: spec)
        return run
    }

    func testCoordinatorRefusesToListenBeyondLoopbackWithoutKeys() throws {
        let run = try preparedRunDirectory()
        XCTAssertThrowsError(try Coordinator(runDirectory: run, bind: "tcp://0.0.0.0:*")) { error in
            XCTAssertTrue("\(error)".contains("refusing to bind tcp://0.0.0.0:* without CURVE keys"), "\(error)")
        }
        let coordinator = try Coordinator(runDirectory: run, bind: "tcp://127.0.0.1:*")
        XCTAssertTrue(coordinator.endpoint.hasPrefix("tcp://127.0.0.1:"))
    }

    /// Sends a heartbeat from `client` and steps the coordinator until an answer
    /// comes (an unknown connection is asked to say hello) or `seconds` pass.
    private func answer(from coordinator: Coordinator, to client: Socket, seconds: Double) throws -> Message? {
        try client.send(Message.heartbeat.encoded())
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            try coordinator.step(timeout: 20)
            if try poll([client], timeout: 0)[0], let frames = try client.receive(dontWait: true),
               let message = try? Message.decode(frames), message != .heartbeat {
                return message
            }
        }
        return nil
    }

    func testCurveCoordinatorServesOnlyAuthorisedKeys() throws {
        let run = try preparedRunDirectory()
        let server = try CurveKeyPair.generate()
        let allowed = try CurveKeyPair.generate()
        let stranger = try CurveKeyPair.generate()
        let authorized = directory.appendingPathComponent("authorized_keys")
        try "# workers\n\(allowed.publicKey) allowed\n".write(to: authorized, atomically: true, encoding: .utf8)
        let logged = LogCapture()
        let coordinator = try Coordinator(runDirectory: run, bind: "tcp://0.0.0.0:*",
                                          security: CoordinatorSecurity(keyPair: server, authorizedKeysFile: authorized),
                                          logger: Logger(label: "test") { _ in logged })
        let port = coordinator.endpoint.split(separator: ":").last!
        let context = try Context()

        func client(_ keys: CurveKeyPair?) throws -> (Socket, SocketMonitor) {
            let socket = try context.socket(.dealer)
            try socket.setLinger(0)
            if let keys { try socket.makeCurveClient(serverPublicKey: server.publicKey, keyPair: keys) }
            let monitor = try SocketMonitor(socket)
            try socket.connect("tcp://127.0.0.1:\(port)")
            return (socket, monitor)
        }
        func events(_ monitor: SocketMonitor) -> [SocketMonitor.Kind] {
            var kinds: [SocketMonitor.Kind] = []
            while let event = monitor.nextEvent() { kinds.append(event.kind) }
            return kinds
        }

        let (good, goodMonitor) = try client(allowed)
        XCTAssertEqual(try answer(from: coordinator, to: good, seconds: 10), .rehello)
        XCTAssertTrue(events(goodMonitor).contains(.handshakeSucceeded))

        let (bad, badMonitor) = try client(stranger)
        XCTAssertNil(try answer(from: coordinator, to: bad, seconds: 1.5))
        XCTAssertTrue(events(badMonitor).contains(.handshakeFailedAuthentication))
        XCTAssertTrue(logged.text.contains("refused worker key \(stranger.publicKey) from 127.0.0.1"), logged.text)

        let (plain, plainMonitor) = try client(nil)
        XCTAssertNil(try answer(from: coordinator, to: plain, seconds: 1.5))
        XCTAssertTrue(events(plainMonitor).contains(where: { $0 != .connected && $0 != .disconnected }))

        // Authorising a key takes effect without a restart. The file's time stamp must change.
        Thread.sleep(forTimeInterval: 1.1)
        try "\(allowed.publicKey)\n\(stranger.publicKey) late\n".write(to: authorized, atomically: true, encoding: .utf8)
        let (later, laterMonitor) = try client(stranger)
        XCTAssertEqual(try answer(from: coordinator, to: later, seconds: 10), .rehello, logged.text)
        XCTAssertTrue(logged.text.contains("reloaded \(authorized.path): 2 authorised keys"), logged.text)

        for socket in [good, bad, plain, later] { socket.close() }
        for monitor in [goodMonitor, badMonitor, plainMonitor, laterMonitor] { monitor.close() }
        coordinator.stop()
        try coordinator.run()
    }
    /// What crosses the wire: with CURVE nothing of the protocol is readable; without, the
    /// same exchange shows its JSON (so the relay does see the traffic).
    func testTrafficIsEncrypted() throws {
        let server = try CurveKeyPair.generate()
        let worker = try CurveKeyPair.generate()
        let authorized = directory.appendingPathComponent("authorized_keys")
        try "\(worker.publicKey) w\n".write(to: authorized, atomically: true, encoding: .utf8)
        let marker = "marker-\(UUID().uuidString)"

        func relayedBytes(encrypted: Bool) throws -> Data {
            let run = try preparedRunDirectory()
            let coordinator = try Coordinator(
                runDirectory: run, bind: "tcp://127.0.0.1:*",
                security: encrypted ? CoordinatorSecurity(keyPair: server, authorizedKeysFile: authorized) : nil,
                logger: Logger(label: "test") { _ in LogCapture() })
            let relay = try RecordingRelay(targetPort: Int(coordinator.endpoint.split(separator: ":").last!)!)
            let context = try Context()
            let client = try context.socket(.dealer)
            try client.setLinger(0)
            if encrypted { try client.makeCurveClient(serverPublicKey: server.publicKey, keyPair: worker) }
            try client.connect("tcp://127.0.0.1:\(relay.port)")
            try client.send(Message.hello(Hello(worker: marker, incarnation: "test", slots: 1, running: [])).encoded())
            var welcomed = false
            let deadline = Date().addingTimeInterval(10)
            while !welcomed && Date() < deadline {
                try coordinator.step(timeout: 20)
                while let frames = try client.receive(dontWait: true) {
                    if case .welcome = try Message.decode(frames) { welcomed = true }
                }
            }
            XCTAssertTrue(welcomed, "no welcome through the relay (encrypted: \(encrypted))")
            client.close()
            coordinator.stop()
            try coordinator.run()
            try FileManager.default.removeItem(at: run)
            let bytes = relay.bytes
            relay.stop()
            return bytes
        }

        let plain = try relayedBytes(encrypted: false)
        XCTAssertNotNil(plain.range(of: Data(marker.utf8)), "the relay sees plaintext traffic")
        let encrypted = try relayedBytes(encrypted: true)
        XCTAssertGreaterThan(encrypted.count, 200)
        for secret in [marker, "\"worker\"", "CSW", "heartbeatSeconds"] {
            XCTAssertNil(encrypted.range(of: Data(secret.utf8)), "'\(secret)' crossed the wire in clear")
        }
        XCTAssertNotNil(encrypted.range(of: Data("CURVE".utf8)), "the greeting names the mechanism")
    }
}

/// Collects log lines in memory.
final class LogCapture: LogHandler {
    private let lock = NSLock()
    private var lines: [String] = []
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?,
             source: String, file: String, function: String, line: UInt) {
        lock.lock()
        lines.append("\(level) \(message)")
        lock.unlock()
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return lines.joined(separator: "\n")
    }
}

/// A TCP relay on 127.0.0.1 that forwards every connection to a target port and keeps
/// a copy of all bytes it passes, in both directions: what an eavesdropper would see.
final class RecordingRelay {
    private(set) var port = 0
    private let listener: Int32
    private let lock = NSLock()
    private var recorded = Data()
    private var descriptors: [Int32] = []

    init(targetPort: Int) throws {
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = RecordingRelay.loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && listen(listener, 8) == 0 && getsockname(listener, $0, &length) == 0
            }
        }
        guard listener >= 0, bound else { throw SweepError("relay: cannot listen on 127.0.0.1") }
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread { [self] in
            while true {
                let client = accept(listener, nil, nil)
                if client < 0 { return }
                let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                var target = RecordingRelay.loopback(port: targetPort)
                let connected = withUnsafePointer(to: &target) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                    }
                }
                guard connected else { close(client); close(server); continue }
                lock.lock()
                descriptors += [client, server]
                lock.unlock()
                for (from, to) in [(client, server), (server, client)] {
                    Thread { [self] in copy(from: from, to: to) }.start()
                }
            }
        }.start()
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port)).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    private func copy(from: Int32, to: Int32) {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = read(from, &buffer, buffer.count)
            if count <= 0 { break }
            lock.lock()
            recorded.append(contentsOf: buffer[0..<count])
            lock.unlock()
            if write(to, buffer, count) != count { break }
        }
        shutdown(to, Int32(SHUT_WR))
    }

    /// Every byte relayed so far.
    var bytes: Data {
        lock.lock()
        defer { lock.unlock() }
        return recorded
    }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        lock.lock()
        for descriptor in descriptors { shutdown(descriptor, Int32(SHUT_RDWR)) }
        lock.unlock()
    }
}
