import ArgumentParser
import Foundation
import Sweep

struct ResumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume",
        abstract: "Continue a stopped sweep with local workers.")

    @Argument(help: ArgumentHelp("The run directory of the sweep.", valueName: "run-dir"))
    var runDirectory: String

    @Option(help: "Local worker processes (default: one per core).")
    var workers: Int = ProcessInfo.processInfo.activeProcessorCount

    func run() throws {
        try runLocalSweep(runDirectory: URL(fileURLWithPath: runDirectory), workers: workers)
    }
}
