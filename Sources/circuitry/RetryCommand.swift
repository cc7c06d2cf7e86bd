import ArgumentParser
import Foundation
import Sweep

struct RetryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Put failed shards back to pending, with a fresh set of attempts; or prune every trained model again.",
        discussion: """
            With --pruning and a sweep file, every prune shard takes that file's pruning settings \
            (and its --set overrides) before it runs again; every other shard must be planned unchanged. \
            Example, a finer λ grid for a finished run: circuitry retry runs/quick --pruning \
            --sweep-file sweeps/quick.yaml --set 'prune.lambdas=[1e-4, 2e-4, 3e-4, 5e-4, 7e-4, 1e-3, 2e-3, 3e-3, 5e-3, 7e-3, 1e-2]'
            """)

    @OptionGroup var runDirectory: RunDirectoryArgument

    @Flag(help: "Retry every failed shard (and the shards that waited on them).")
    var failed = false

    @Flag(help: "Prune every trained model again, after a change to the pruning: done and failed prune shards go back to pending and their circuits leave the results; trained models are kept.")
    var pruning = false

    @Option(help: "With --pruning: the sweep file whose pruning settings the prune shards take.")
    var sweepFile: String?

    @OptionGroup var overrides: SweepOverrideOptions

    func validate() throws {
        guard failed || pruning else { throw ValidationError("say which shards: --failed or --pruning") }
        if sweepFile != nil && !pruning { throw ValidationError("--sweep-file goes with --pruning") }
        if !overrides.isEmpty && sweepFile == nil { throw ValidationError("--set needs --sweep-file") }
    }

    func run() throws {
        let spec = try sweepFile.map { try overrides.load(sweepFile: $0) }
        let store = try RunDirectory(runDirectory.url).openStore()
        let now = Date().timeIntervalSince1970
        let (failedCount, pruneCount) = try store.write { tx in
            if let spec {
                let changed = try tx.changePruning(to: spec, shards: plan(spec), now: now)
                print("\(changed == 1 ? "1 prune shard takes" : "\(changed) prune shards take") the pruning settings of \(sweepFile!)")
            }
            let attempts = try tx.sweepSpec().retries.maxAttempts
            let failedCount = failed ? try tx.retryFailed(maxAttempts: attempts, now: now) : 0
            return (failedCount, pruning ? try tx.repruneAll(maxAttempts: attempts, now: now) : 0)
        }
        let what = [failed ? "\(failedCount) failed shards" : nil, pruning ? "\(pruneCount) prune shards" : nil].compactMap { $0 }
        print("\(what.joined(separator: " and ")) are pending again; continue with `circuitry resume \(runDirectory.path)` or a coordinator --resume")
    }
}
