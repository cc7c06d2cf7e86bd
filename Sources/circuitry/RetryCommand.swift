import ArgumentParser
import Foundation
import Sweep

struct RetryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Put failed shards back to pending, with a fresh set of attempts.")

    @OptionGroup var runDirectory: RunDirectoryArgument

    @Flag(help: "Retry every failed shard (and the shards that waited on them).")
    var failed = false

    func validate() throws {
        guard failed else { throw ValidationError("say which shards: --failed") }
    }

    func run() throws {
        let store = try RunDirectory(runDirectory.url).openStore()
        let count = try store.write { tx in
            try tx.retryFailed(maxAttempts: try tx.sweepSpec().retries.maxAttempts, now: Date().timeIntervalSince1970)
        }
        print("\(count) failed shards are pending again; continue with `circuitry resume \(runDirectory.path)` or a coordinator --resume")
    }
}
