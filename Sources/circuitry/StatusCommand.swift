import ArgumentParser
import Foundation
import Sweep

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show every shard of a sweep and its state, while it runs or after.")

    @Argument(help: ArgumentHelp("The run directory of the sweep.", valueName: "run-dir"))
    var runDirectory: String

    @Flag(help: "Print one JSON object: finished, counts, shards.")
    var json = false

    func run() throws {
        let directory = URL(fileURLWithPath: runDirectory)
        let snapshot = try StatusReport.snapshot(runDirectory: directory)
        if json {
            print(StatusReport.json(snapshot))
        } else {
            print(StatusReport.table(snapshot))
            print(try RunReport.summary(runDirectory: directory), terminator: "")
        }
    }
}
