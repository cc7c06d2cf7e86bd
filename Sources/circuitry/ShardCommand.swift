import ArgumentParser
import Foundation
import Sweep

/// Run by workers in a child process for each shard.
struct ShardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shard", abstract: "Internal: run one shard.", shouldDisplay: false,
        subcommands: [Exec.self])

    struct Exec: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the shard job described by a JSON file.")

        @Argument var jobFile: String

        func run() throws {
            let status = ShardRunner.main(jobFile: URL(fileURLWithPath: jobFile))
            if status != 0 { throw ExitCode(status) }
        }
    }
}
