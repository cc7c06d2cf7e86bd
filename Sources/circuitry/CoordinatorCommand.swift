import ArgumentParser
import Foundation
import Logging
import Sweep

struct CoordinatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Serve a sweep to workers over ZeroMQ until every shard is done or failed.")

    @Argument(help: "The sweep file (YAML); omit with --resume.")
    var sweepFile: String?

    @Option(help: "Endpoint to bind, e.g. tcp://0.0.0.0:5555 (anything but loopback needs --key and --authorized-keys).")
    var bind: String = "tcp://0.0.0.0:5555"

    @Option(help: "The coordinator's CURVE key pair file (from `circuitry keygen`).")
    var key: String?

    @Option(help: "Worker public keys to accept, one per line (re-read when it changes).")
    var authorizedKeys: String?

    @Option(help: "Run directory (default: runs/NAME).")
    var runDir: String?

    @Option(help: "Continue the sweep stored in this run directory.")
    var resume: String?

    @Flag(help: "Keep serving after the sweep finished.")
    var stayUp = false

    func run() throws {
        let logger = Logger(label: "coordinator")
        // Keys first: a refused coordinator leaves nothing behind.
        var security: CoordinatorSecurity?
        switch (key, authorizedKeys) {
        case (let keyFile?, let authorized?):
            let keyURL = URL(fileURLWithPath: keyFile)
            if let warning = CurveKeyFile.permissionWarning(keyURL) { logger.warning("\(warning)") }
            security = try CoordinatorSecurity(keyFile: keyURL, authorizedKeysFile: URL(fileURLWithPath: authorized))
        case (nil, nil): security = nil
        default: throw ValidationError("--key and --authorized-keys go together")
        }
        try Coordinator.checkSecurity(bind: bind, security: security)
        let runDirectory: URL
        switch (sweepFile, resume) {
        case (let file?, nil):
            let spec = try SweepSpec.load(from: URL(fileURLWithPath: file))
            runDirectory = runDir.map { URL(fileURLWithPath: $0) } ?? RunDirectory.defaultURL(forSweep: spec.name)
            try RunDirectory(runDirectory).create(spec: spec)
        case (nil, let directory?):
            runDirectory = URL(fileURLWithPath: directory)
        default:
            throw ValidationError("give either a sweep file or --resume RUN_DIR")
        }
        StopSignal.install()
        let coordinator = try Coordinator(runDirectory: runDirectory, bind: bind, security: security, logger: logger)
        print("coordinator on \(coordinator.endpoint), run directory \(runDirectory.path)")
        fflush(stdout)
        var nextCheck = 0.0
        try coordinator.run {
            if StopSignal.received { return false }
            let now = Date().timeIntervalSince1970
            guard !stayUp, now >= nextCheck else { return true }
            nextCheck = now + 1
            return !((try? coordinator.store.read { try $0.counts().finished }) ?? false)
        }
        print(try RunReport.write(runDirectory: runDirectory), terminator: "")
    }
}
