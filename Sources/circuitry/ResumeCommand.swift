import ArgumentParser
import Foundation
import Sweep

struct ResumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume",
        abstract: "Continue a stopped sweep with local workers.")

    @Argument(help: "The run directory of the sweep.")
    var runDirectory: String

    @Option(help: "Shards run at once on this machine (default: one per core).")
    var workers: Int = ProcessInfo.processInfo.activeProcessorCount

    func run() throws {
        let directory = URL(fileURLWithPath: runDirectory)
        _ = try RunDirectory(directory).openStore(readOnly: true)
        try runLocalSweep(runDirectory: directory, slots: workers)
    }
}
