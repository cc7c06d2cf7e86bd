import ArgumentParser
import Foundation
import Sweep

struct RetryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Put failed shards back to pending, with a fresh set of attempts.")

    @Argument(help: "The run directory of the sweep.")
    var runDirectory: String

    @Flag(help: "Retry every failed shard (and the shards that waited on them).")
    var failed = false

    func run() throws {
        guard failed else { throw ValidationError("say which shards: --failed") }
        let store = try RunDirectory(URL(fileURLWithPath: runDirectory)).openStore()
        let count = try store.write { tx in
            try tx.retryFailed(maxAttempts: try tx.sweepSpec().retries.maxAttempts, now: Date().timeIntervalSince1970)
        }
        print("\(count) failed shards are pending again; continue with `circuitry resume \(runDirectory)` or a coordinator --resume")
    }
}
