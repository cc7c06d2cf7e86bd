import Foundation
import GRDB
import XCTest
@testable import Sweep

/// Coordinator and workers on three "machines": network namespaces joined by veth
/// links to a bridge on 10.231.7.0/24 inside the coordinator's namespace. The
/// namespaces are made and removed by each test; without root or `ip netns` the
/// tests are skipped.
final class NetworkNamespaceTests: ClusterTestCase {
    private static var counter = 0
    private var namespaces: [String] = []
    private var coordinatorNamespace: String { namespaces[0] }
    /// Worker namespace → its address.
    private var workerAddresses: [String: String] = [:]
    private let coordinatorAddress = "10.231.7.1"
    private var endpoint: String { "tcp://\(coordinatorAddress):5555" }

    override func setUpWithError() throws {
        try super.setUpWithError()
        guard getuid() == 0 else { throw XCTSkip("network namespace tests need root (ip netns)") }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") || FileManager.default.isExecutableFile(atPath: "/sbin/ip")
                || FileManager.default.isExecutableFile(atPath: "/usr/bin/ip") else {
            throw XCTSkip("network namespace tests need the ip command (iproute2)")
        }
        NetworkNamespaceTests.counter += 1
        let tag = "csw\(getpid())-\(NetworkNamespaceTests.counter)"
        let names = ["\(tag)-c", "\(tag)-a", "\(tag)-b"]
        do {
            try ip(["netns", "add", names[0]])
        } catch {
            throw XCTSkip("ip netns add is not permitted here: \(error)")
        }
        namespaces = [names[0]]
        do {
            try linkNamespaces(names)
        } catch {
            removeNamespaces()
            throw error
        }
    }

    /// A bridge in the coordinator's namespace, with a veth link to each worker namespace.
    private func linkNamespaces(_ names: [String]) throws {
        for name in names.dropFirst() {
            try ip(["netns", "add", name])
            namespaces.append(name)
        }
        for name in names { try ip(["-n", name, "link", "set", "lo", "up"]) }
        let coordinator = names[0]
        try ip(["-n", coordinator, "link", "add", "br0", "type", "bridge"])
        try ip(["-n", coordinator, "addr", "add", "\(coordinatorAddress)/24", "dev", "br0"])
        try ip(["-n", coordinator, "link", "set", "br0", "up"])
        for (index, name) in names.dropFirst().enumerated() {
            let port = "port\(index)"
            let address = "10.231.7.\(index + 2)"
            try ip(["-n", coordinator, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", name])
            try ip(["-n", coordinator, "link", "set", port, "master", "br0"])
            try ip(["-n", coordinator, "link", "set", port, "up"])
            try ip(["-n", name, "addr", "add", "\(address)/24", "dev", "eth0"])
            try ip(["-n", name, "link", "set", "eth0", "up"])
            workerAddresses[name] = address
        }
    }

    override func tearDownWithError() throws {
        // Processes first: a namespace lives on while a process is inside it.
        stopProcesses()
        removeNamespaces()
        try super.tearDownWithError()
    }

    private func removeNamespaces() {
        for name in namespaces.reversed() { try? ip(["netns", "del", name]) }
        namespaces.removeAll()
    }

    /// Runs `ip ARGUMENTS`; throws with its error output when it fails.
    private func ip(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ip"] + arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let output = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw SweepError("ip \(arguments.joined(separator: " ")): \(String(decoding: output, as: UTF8.self))")
        }
    }

    private func setLink(of namespace: String, up: Bool) throws {
        try ip(["-n", namespace, "link", "set", "eth0", up ? "up" : "down"])
    }

    private func startCoordinator(keys: URL, sweep: URL) throws -> Process {
        try spawn("coordinator", ["coordinator", sweep.path, "--bind", endpoint, "--run-dir", runDirectory.path,
                                  "--key", keys.appendingPathComponent("coordinator.key").path,
                                  "--authorized-keys", keys.appendingPathComponent("authorized_keys").path],
                  namespace: coordinatorNamespace)
    }

    @discardableResult
    private func startWorker(_ name: String, in namespace: String, keys: URL) throws -> Process {
        try spawn(name, workerArguments(name, connect: endpoint) + [
            "--key", keys.appendingPathComponent("\(name).key").path,
            "--server-key", keys.appendingPathComponent("coordinator.pub").path,
        ], namespace: namespace)
    }

    /// Authorises the public keys of `names` by appending their .pub files, as an operator would.
    private func authorize(_ names: [String], keys: URL) throws {
        let text = try names.map { try String(contentsOf: keys.appendingPathComponent("\($0).pub"), encoding: .utf8) }
        try text.joined().write(to: keys.appendingPathComponent("authorized_keys"), atomically: true, encoding: .utf8)
    }

    private func publicKey(_ name: String, keys: URL) throws -> String {
        try CurveKeyFile.readPublicKey(keys.appendingPathComponent("\(name).pub").path)
    }

    // MARK: tests

    func testCutLinkReleasesTheShardIgnoresTheLateResultAndTheWorkerRejoins() throws {
        let keys = try keygen(["coordinator", "wa", "wb"])
        try authorize(["wa", "wb"], keys: keys)
        let sweep = try sweepFile(steps: 30, stepSeconds: 0.1, tasks: ["var_swap", "if_equals", "bracket_brace", "fstring_brace"])
        try startCoordinator(keys: keys, sweep: sweep)
        let workers = ["wa": namespaces[1], "wb": namespaces[2]]
        var processes: [String: Process] = [:]
        for (name, namespace) in workers { processes[name] = try startWorker(name, in: namespace, keys: keys) }

        let train = "train/d1-w64-a1-s0"
        var owner = ""
        waitUntil("the train shard is past its first checkpoint") {
            guard let shard = snapshot()?.shards.first(where: { $0.id == train }), shard.state == .leased,
                  (shard.step ?? 0) >= 8, let worker = shard.worker else { return false }
            owner = worker
            return true
        }
        let other = owner == "wa" ? "wb" : "wa"
        try setLink(of: workers[owner]!, up: false)

        waitUntil("the train shard finished on the other worker") {
            snapshot()?.shards.first { $0.id == train }?.state == .done
        }
        let attempts = try store().read { try $0.attempts(ofShard: train) }
        XCTAssertEqual(attempts.count, 2, "\(attempts)")
        XCTAssertEqual(attempts.first?.worker, owner)
        XCTAssertTrue(attempts.first?.error?.contains("stopped answering") ?? false, "\(attempts)")
        XCTAssertEqual(attempts.last?.worker, other)
        XCTAssertEqual(attempts.last?.outcome, "done")

        // The cut-off worker finished its copy meanwhile; its result waits to be delivered.
        let ownCopy = directory.appendingPathComponent("work-\(owner)/\(train.replacingOccurrences(of: "/", with: "_"))-1")
        waitUntil("the cut-off worker finished its copy", timeout: 20) {
            !FileManager.default.fileExists(atPath: ownCopy.path)
        }
        let restored = Date().timeIntervalSince1970
        try setLink(of: workers[owner]!, up: true)

        waitUntil("the cut-off worker rejoined", timeout: 30) {
            ((try? events()) ?? []).contains { $0.event == "worker_joined" && $0.at > restored && $0.detail?.hasPrefix("\(owner) ") == true }
        }
        waitUntil("its late result was ignored", timeout: 15) {
            log("coordinator").contains("ignored a late result for \(train)#1")
        }
        waitUntil("the sweep finished", timeout: 90, finished)
        let status = try statusJSON()
        let shards = try XCTUnwrap(status["shards"] as? [[String: Any]])
        let trainStatus = try XCTUnwrap(shards.first { $0["id"] as? String == train })
        XCTAssertEqual(trainStatus["attempts"] as? Int, 2)
        XCTAssertEqual(trainStatus["state"] as? String, "done")
        XCTAssertTrue(shards.allSatisfy { $0["state"] as? String == "done" }, "\(shards)")
        XCTAssertEqual(try store().read { try $0.resultCount() }, shards.count)
        let doneEvents = try events().filter { $0.event == "done" }
        XCTAssertEqual(doneEvents.count, shards.count, "every result recorded exactly once")
        XCTAssertEqual(doneEvents.filter { $0.shard == train }.count, 1)
        // Back on the network, the worker took work again.
        let laterWork = try store().read { tx in
            try Int.fetchOne(tx.db, sql: "SELECT count(*) FROM attempts WHERE worker = ? AND started_at > ?",
                             arguments: [owner, restored])!
        }
        XCTAssertGreaterThan(laterWork, 0, "the rejoined worker \(owner) leased no shard after the link came back")
        XCTAssertTrue(processes.values.allSatisfy(\.isRunning))
    }

    func testUnauthorisedAndKeylessWorkersAreRefused() throws {
        let keys = try keygen(["coordinator", "wa", "stranger"])
        try authorize(["wa"], keys: keys)
        let sweep = try sweepFile(steps: 5, stepSeconds: 0.02)

        // Without keys, a coordinator does not listen beyond loopback.
        let open = try spawn("open-coordinator", ["coordinator", sweep.path, "--bind", endpoint,
                                                  "--run-dir", directory.appendingPathComponent("open").path],
                             namespace: coordinatorNamespace)
        open.waitUntilExit()
        XCTAssertNotEqual(open.terminationStatus, 0)
        XCTAssertTrue(log("open-coordinator").contains("refusing to bind \(endpoint) without CURVE keys"),
                      log("open-coordinator"))

        try startCoordinator(keys: keys, sweep: sweep)
        let strangerKey = try publicKey("stranger", keys: keys)
        try startWorker("stranger", in: namespaces[2], keys: keys)
        try spawn("keyless", workerArguments("keyless", connect: endpoint), namespace: namespaces[2])
        waitUntil("the coordinator refused the stranger", timeout: 30) {
            log("coordinator").contains("refused worker key \(strangerKey) from \(workerAddresses[namespaces[2]]!)")
        }
        waitUntil("the stranger was told why", timeout: 30) {
            log("stranger").contains("refused this worker's key \(strangerKey)")
        }
        waitUntil("the keyless worker was told why", timeout: 30) {
            log("keyless").contains("requires CURVE")
        }

        try startWorker("wa", in: namespaces[1], keys: keys)
        waitUntil("the sweep finished", finished)
        let snapshot = try XCTUnwrap(snapshot())
        XCTAssertTrue(snapshot.shards.allSatisfy { $0.state == .done }, StatusReport.table(snapshot))
        let workersSeen = try store().read { tx in
            try snapshot.shards.flatMap { try tx.attempts(ofShard: $0.id) }.compactMap(\.worker)
        }
        XCTAssertEqual(Set(workersSeen), ["wa"])
        let joined = try events().filter { $0.event == "worker_joined" }.compactMap(\.detail)
        XCTAssertTrue(joined.allSatisfy { $0.hasPrefix("wa ") }, "\(joined)")
    }
}
