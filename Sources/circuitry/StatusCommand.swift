import ArgumentParser
import Foundation
import Sweep

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show every shard of a sweep and its state, while it runs or after.")

    @Argument(help: "The run directory of the sweep.")
    var runDirectory: String

    @Flag(help: "Print one JSON object: finished, counts, shards.")
    var json = false

    func run() throws {
        let snapshot = try StatusReport.snapshot(runDirectory: URL(fileURLWithPath: runDirectory))
        print(json ? StatusReport.json(snapshot) : StatusReport.table(snapshot))
    }
}
