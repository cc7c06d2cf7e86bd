import ArgumentParser
import Foundation
import Logging
import SparseGPT
import Sweep

struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Lease shards from a coordinator and run each in a child process.")

    @Option(help: "The coordinator's endpoint, e.g. tcp://HOST:5555.")
    var connect: String

    @OptionGroup(title: "CURVE keys") var keys: WorkerKeyOptions

    @Option(help: "Shards run at once (default: one per core).")
    var slots: Int?

    @Option(help: "Worker name in the coordinator's records (default: host-pid).")
    var name: String?

    @Option(help: "Artifact cache directory.")
    var cache: String = FileManager.default.temporaryDirectory.appendingPathComponent("circuitry-cache").path

    @Option(help: "Directory for the shards' working files.")
    var workDir: String?

    @Option(help: "Exit after this many seconds without work.")
    var idleExit: Double?

    @Flag(help: .hidden)
    var exitWithParent = false

    func validate() throws {
        try ArgumentChecks.endpoint(connect, option: "--connect")
        if let name, name.hasPrefix(LocalWorkerName.prefix), !exitWithParent {
            throw ValidationError("--name: names starting with \"\(LocalWorkerName.prefix)\" belong to the workers of `circuitry run`; a restarted coordinator releases their leases at once")
        }
    }

    func run() throws {
        let slots = self.slots ?? ProcessInfo.processInfo.activeProcessorCount
        guard slots >= 1 else { throw ValidationError("--slots must be at least 1") }
        let workerName = name ?? "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
        let work = workDir ?? FileManager.default.temporaryDirectory.appendingPathComponent("circuitry-work/\(workerName)").path
        var options = WorkerOptions(connect: connect, slots: slots, name: workerName,
                                    cacheDirectory: URL(fileURLWithPath: cache), workDirectory: URL(fileURLWithPath: work),
                                    executable: currentExecutable())
        options.idleExitSeconds = idleExit
        options.exitWithParent = exitWithParent
        StopSignal.install()
        options.security = try keys.security(logger: Logger(label: "worker \(workerName)"))
        // The worker connects whenever the coordinator comes up; until then it is silent, so say what it waits for.
        FileHandle.standardError.write(Data("worker \(workerName): waiting for the coordinator at \(connect) (\(slots) slot\(slots == 1 ? "" : "s"), OpenBLAS kernel \(BLASKernel.current))\n".utf8))
        try Worker(options: options, logger: Logger(label: "worker \(workerName)")).run()
    }
}
