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

    @OptionGroup(title: "CURVE keys") var keys: CoordinatorKeyOptions

    @OptionGroup var newSweep: NewSweepOptions

    @Option(help: ArgumentHelp("Continue the sweep stored in this run directory.", valueName: "run-dir"))
    var resume: String?

    @Flag(help: "Keep serving after the sweep finished.")
    var stayUp = false

    func validate() throws {
        try ArgumentChecks.endpoint(bind, option: "--bind")
        if let sweepFile { try ArgumentChecks.sweepFile(sweepFile) }
    }

    func run() throws {
        let logger = Logger(label: "coordinator")
        // Keys first: a refused coordinator leaves nothing behind.
        let security = try keys.security(logger: logger)
        try Coordinator.checkSecurity(bind: bind, security: security)
        let runDirectory: URL
        switch (sweepFile, resume) {
        case (let file?, nil):
            runDirectory = try newSweep.createRun(sweepFile: file)
        case (nil, let directory?):
            guard newSweep.overrides.isEmpty, newSweep.runDirectory == nil else {
                throw ValidationError("--set and --run-dir lay out a new sweep; a resumed sweep keeps its own")
            }
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
