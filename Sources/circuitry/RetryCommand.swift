import ArgumentParser
import Foundation
import Sweep

struct RetryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Put failed shards back to pending, with a fresh set of attempts; or prune every trained model again.")

    @OptionGroup var runDirectory: RunDirectoryArgument

    @Flag(help: "Retry every failed shard (and the shards that waited on them).")
    var failed = false

    @Flag(help: "Prune every trained model again, after a change to the pruning: done and failed prune shards go back to pending and their circuits leave the results; trained models are kept.")
    var pruning = false

    func validate() throws {
        guard failed || pruning else { throw ValidationError("say which shards: --failed or --pruning") }
    }

    func run() throws {
        let store = try RunDirectory(runDirectory.url).openStore()
        let now = Date().timeIntervalSince1970
        let (failedCount, pruneCount) = try store.write { tx in
            let attempts = try tx.sweepSpec().retries.maxAttempts
            let failedCount = failed ? try tx.retryFailed(maxAttempts: attempts, now: now) : 0
            return (failedCount, pruning ? try tx.repruneAll(maxAttempts: attempts, now: now) : 0)
        }
        let what = [failed ? "\(failedCount) failed shards" : nil, pruning ? "\(pruneCount) prune shards" : nil].compactMap { $0 }
        print("\(what.joined(separator: " and ")) are pending again; continue with `circuitry resume \(runDirectory.path)` or a coordinator --resume")
    }
}
