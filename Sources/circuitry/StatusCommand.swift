import ArgumentParser
import Foundation
import Sweep

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show every shard of a sweep and its state, while it runs or after.")

    @OptionGroup var runDirectory: RunDirectoryArgument

    @Flag(help: "Print one JSON object: finished, counts, shards.")
    var json = false

    func run() throws {
        let directory = runDirectory.url
        let snapshot = try StatusReport.snapshot(runDirectory: directory)
        if json {
            print(StatusReport.json(snapshot))
        } else {
            print(StatusReport.table(snapshot))
            print(try RunReport.summary(runDirectory: directory), terminator: "")
        }
    }
}
